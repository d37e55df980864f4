#include "net/timer.h"

#include <limits>

namespace conet {

SleepAwaiter Sleep(absl::Duration duration, const Cancellation& cancel) {
  const int64_t now = internal::MonotonicNowNs();
  const int64_t wake = duration >= absl::Hours(24 * 365 * 100)
                           ? std::numeric_limits<int64_t>::max()
                           : now + absl::ToInt64Nanoseconds(duration);
  return SleepAwaiter(wake, cancel);
}

SleepAwaiter SleepUntil(absl::Time when, const Cancellation& cancel) {
  return Sleep(when - absl::Now(), cancel);
}

bool SleepAwaiter::await_ready() noexcept {
  status() = StopStatus();
  if (!status().ok()) return true;
  return timer_.deadline_ns <= internal::MonotonicNowNs();
}

bool SleepAwaiter::await_suspend(std::coroutine_handle<> handle) noexcept {
  absl::StatusOr<EventLoop*> current = internal::CurrentLoop("Sleep");
  if (!current.ok()) {
    status() = current.status();
    return false;
  }
  EventLoop* loop = *current;
  timer_.on_expire = &SleepAwaiter::Expired;
  timer_.context = this;
  internal::LoopAccess::Timers(*loop).Insert(&timer_);
  Suspend(*loop, handle);
  return true;
}

void SleepAwaiter::Expired(internal::TimerNode* node) {
  static_cast<SleepAwaiter*>(node->context)->Wake(absl::OkStatus(), true);
}

void SleepAwaiter::Unlink() noexcept { internal::LoopAccess::Timers(*loop()).Remove(&timer_); }

Yield::~Yield() {
  if (loop_ != nullptr) internal::LoopAccess::Unschedule(*loop_, &node_);
}

bool Yield::await_suspend(std::coroutine_handle<> handle) noexcept {
  loop_ = EventLoop::Current();
  if (loop_ == nullptr) return false;
  node_.handle = handle;
  internal::LoopAccess::Schedule(*loop_, &node_);
  return true;
}

}  // namespace conet
