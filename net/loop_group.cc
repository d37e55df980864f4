#include "net/loop_group.h"

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace conet {

absl::StatusOr<std::unique_ptr<LoopGroup>> LoopGroup::Create(int threads) {
  if (threads < 1) {
    return absl::InvalidArgumentError("LoopGroup needs at least one thread");
  }
  std::vector<std::unique_ptr<EventLoop>> loops;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    if (!loop.ok()) return loop.status();
    loops.push_back(*std::move(loop));
  }
  return std::unique_ptr<LoopGroup>(new LoopGroup(std::move(loops)));
}

LoopGroup::~LoopGroup() {
  Stop();
  Join();
  // Each loop is destroyed on this thread, after every thread ended.
}

void LoopGroup::SpawnOnEach(absl::AnyInvocable<Task<void>(int)> make_task) {
  auto factory = std::make_shared<absl::AnyInvocable<Task<void>(int)>>(std::move(make_task));
  for (int i = 0; i < size(); ++i) {
    EventLoop* loop = loops_[i].get();
    loop->Post([loop, factory, i] { loop->SpawnDetached((*factory)(i)); });
  }
}

absl::StatusOr<EventLoop*> LoopGroup::LoopAt(int index) const {
  if (index < 0 || index >= size()) {
    return absl::OutOfRangeError(
        absl::StrCat("LoopGroup::RunOn: no loop ", index, " in a group of ", size()));
  }
  return loops_[index].get();
}

void LoopGroup::Start() {
  // Abseil builds its table of strerror texts on the first error message
  // (absl::ErrnoToStatus). Debian's libabsl is not built for
  // ThreadSanitizer, which therefore cannot see the guard of that one-time
  // initialisation and reports two loops' first errors as a race. Building
  // it here, before the threads exist, orders it before every use.
  (void)absl::ErrnoToStatus(EAGAIN, "");
  for (auto& loop : loops_) {
    threads_.emplace_back([raw = loop.get()] { raw->Run(); });
  }
}

void LoopGroup::Stop() noexcept {
  for (auto& loop : loops_) loop->Stop();
}

void LoopGroup::Join() {
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

namespace internal {

void RemoteCall::Finish(std::shared_ptr<RemoteCall> call, bool abandoned) noexcept {
  RemoteCall& self = *call;
  std::lock_guard<std::mutex> lock(self.mu_);
  self.finished_ = true;
  self.abandoned_ = abandoned;
  // Nobody waits: the result goes with the last reference (after the unlock).
  if (self.waiter_ == nullptr) return;
  // The waiter clears waiter_ under mu_ before it goes, so its loop is
  // alive while we post to it; WakeWaiter waits for the unlock.
  self.waiter_loop_->Post([call = std::move(call)] { WakeWaiter(call); });
}

void RemoteCall::WakeWaiter(const std::shared_ptr<RemoteCall>& call) {
  RemoteWait* waiter;
  {
    std::lock_guard<std::mutex> lock(call->mu_);
    waiter = call->waiter_;
  }
  // On the waiter's loop: it cannot go away between the unlock and here.
  if (waiter != nullptr) waiter->Wake(absl::OkStatus(), /*resume_now=*/true);
}

bool RemoteCall::abandoned() const {
  std::lock_guard<std::mutex> lock(mu_);
  return abandoned_;
}

bool RemoteWait::await_suspend(std::coroutine_handle<> handle) {
  absl::StatusOr<EventLoop*> current = CurrentLoop("LoopGroup::RunOn");
  if (!current.ok()) {
    status() = current.status();
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(call_->mu_);
    call_->waiter_ = this;
    call_->waiter_loop_ = *current;
  }
  Suspend(**current, handle);
  // A stop that came meanwhile has already ended the wait: start nothing.
  if (pending()) target_->Post(std::move(start_));
  return true;
}

absl::Status RemoteWait::await_resume() {
  if (!status().ok()) return std::move(status());
  if (call_->abandoned()) {
    return absl::CancelledError(
        absl::StrCat("LoopGroup::RunOn: loop ", index_, " was destroyed before the task finished"));
  }
  return absl::OkStatus();
}

void RemoteWait::Unlink() noexcept {
  bool finished;
  {
    std::lock_guard<std::mutex> lock(call_->mu_);
    call_->waiter_ = nullptr;
    finished = call_->finished_;
  }
  // Outside mu_: the task's stop callbacks post to its loop.
  if (!finished) call_->stop_.request_stop();
}

}  // namespace internal
}  // namespace conet
