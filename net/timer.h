// File: net/timer.h
//
// Timers on the current EventLoop: a heap of deadlines, with the poll timeout
// taken from the earliest one (epoll_pwait2: nanosecond resolution).
//
//   absl::Status slept = co_await conet::Sleep(absl::Microseconds(250));
//   co_await conet::SleepUntil(absl::Now() + absl::Seconds(1));
//   co_await conet::Yield();  // let other ready coroutines run first
//
// co_await yields OK when the time has come, CancelledError if a stop was
// requested first (the Cancellation's token or the task's own token), or
// DeadlineExceededError if the Cancellation's deadline came first.
#ifndef CONET_NET_TIMER_H_
#define CONET_NET_TIMER_H_

#include <coroutine>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/operation.h"
#include "net/internal/timer_heap.h"

namespace conet {

class SleepAwaiter;

// Suspends for `duration` (zero or negative: completes at once).
SleepAwaiter Sleep(absl::Duration duration, const Cancellation& cancel = kNoCancellation);
// Suspends until the wall-clock time `when`.
SleepAwaiter SleepUntil(absl::Time when, const Cancellation& cancel = kNoCancellation);

// Suspends until the loop has run every coroutine that was ready before.
class Yield {
 public:
  Yield() = default;
  Yield(Yield&&) noexcept {}  // nothing to move before it suspends
  ~Yield();
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> handle) noexcept;
  void await_resume() const noexcept {}

 private:
  EventLoop* loop_ = nullptr;
  internal::ReadyNode node_;
};

// Implementation details follow.

class SleepAwaiter final : public internal::Operation {
 public:
  SleepAwaiter(int64_t wake_ns, const Cancellation& cancel) : Operation(cancel) {
    timer_.deadline_ns = wake_ns;
  }
  SleepAwaiter(SleepAwaiter&&) = default;
  ~SleepAwaiter() { Abandon(); }

  bool await_ready() noexcept;
  bool await_suspend(std::coroutine_handle<> handle) noexcept;
  absl::Status await_resume() { return std::move(status()); }

 private:
  static void Expired(internal::TimerNode* node);
  void Unlink() noexcept override;

  internal::TimerNode timer_;
};

}  // namespace conet

#endif  // CONET_NET_TIMER_H_
