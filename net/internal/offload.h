// File: net/internal/offload.h
//
// Offload runs a blocking function (getaddrinfo, ...) on a thread of its own
// and lets a coroutine await it without blocking its EventLoop:
//
//   auto result = std::make_shared<Answer>();
//   absl::AnyInvocable<void() &&> job = [result] { result->value = Lookup(); };
//   absl::Status done = co_await internal::Offload(std::move(job), cancel);
//   if (done.ok()) Use(result->value);
//
// co_await yields OK once the function has returned, or CancelledError /
// DeadlineExceededError if the Cancellation (or the awaiting task's stop
// token) ends the wait first. A blocking call cannot be interrupted, so on
// an early end the function still runs to completion on its thread: it must
// own (or share) everything it touches. Its completion is handed to the
// loop's thread with EventLoop::Post.
#ifndef CONET_NET_INTERNAL_OFFLOAD_H_
#define CONET_NET_INTERNAL_OFFLOAD_H_

#include <coroutine>
#include <memory>
#include <mutex>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/operation.h"

namespace conet::internal {

class Offload final : public Operation {
 public:
  Offload(absl::AnyInvocable<void() &&> job, const Cancellation& cancel = kNoCancellation)
      : Operation(cancel), job_(std::move(job)) {}
  Offload(Offload&&) = default;
  ~Offload() { Abandon(); }

  bool await_ready() noexcept {
    status() = StopStatus();
    return !status().ok();
  }
  bool await_suspend(std::coroutine_handle<> handle);
  absl::Status await_resume() { return std::move(status()); }

 private:
  // Shared with the thread: it wakes `op` (through the loop) if the
  // operation is still waiting when the job returns.
  struct Link {
    std::mutex mu;
    Offload* op = nullptr;  // cleared on the loop's thread when it stops waiting
    EventLoop* loop = nullptr;
  };
  static void Finished(const std::shared_ptr<Link>& link);
  void Unlink() noexcept override;

  absl::AnyInvocable<void() &&> job_;
  std::shared_ptr<Link> link_;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_OFFLOAD_H_
