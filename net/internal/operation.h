// File: net/internal/operation.h
//
// Operation is the base of every awaitable that suspends on an EventLoop. It
// owns the three ways a wait can end early, so each awaitable gets them right
// by construction:
//   - a deadline (a TimerNode in the loop's heap),
//   - a stop request on the Cancellation's token or the awaiting task's
//     token (std::stop_callbacks; a stop from another thread is handed to the
//     loop's thread, which alone touches loop state),
//   - the awaitable's own event (readiness, a timer, a child finishing).
// Whichever comes first wakes the coroutine exactly once; the rest are
// disarmed. A concrete awaiter calls Abandon() from its destructor, so a frame
// destroyed while suspended leaves no registration behind.
#ifndef CONET_NET_INTERNAL_OPERATION_H_
#define CONET_NET_INTERNAL_OPERATION_H_

#include <coroutine>
#include <optional>
#include <stop_token>

#include "absl/status/status.h"
#include "net/cancellation.h"
#include "net/internal/intrusive_list.h"
#include "net/internal/timer_heap.h"

namespace conet {
class EventLoop;
}

namespace conet::internal {

// A ready-queue entry: lives inside the object that waits to be resumed.
struct ReadyNode : ListNode {
  std::coroutine_handle<> handle;
};

class Operation {
 public:
  // Awaiters may be moved until they suspend (GCC moves the result of
  // await_transform); a suspended operation never moves.
  Operation(Operation&& other) noexcept
      : cancellation_(std::move(other.cancellation_)),
        ambient_token_(std::move(other.ambient_token_)),
        status_(std::move(other.status_)) {}
  Operation& operator=(Operation&&) = delete;

  // Adopts the awaiting task's stop token (see net/task.h).
  void InheritStopToken(const std::stop_token& token) noexcept {
    ambient_token_ = token;
  }

  // The loop's side. Wakes the waiter with `status`, resuming it now
  // (`resume_now`) or from the loop's ready queue. No-op unless pending.
  void Wake(absl::Status status, bool resume_now);
  // Ends the wait with CancelledError; called on the loop's thread.
  void CancelFromLoop() { Wake(absl::CancelledError("operation cancelled"), false); }
  // Set (under the loop's remote lock) while queued for a cross-thread cancel.
  bool remote_queued = false;
  ReadyNode ready_node;  // in the loop's ready queue while a wake is deferred

 protected:
  explicit Operation(Cancellation cancellation) noexcept
      : cancellation_(std::move(cancellation)) {}
  ~Operation() = default;

  // Returns the error to complete with at once if a token is already stopped
  // or the deadline has passed; OK otherwise.
  absl::Status StopStatus() const;
  // Marks the operation pending on `loop` and arms deadline and stop
  // callbacks. The awaiter must be linked into its wait structure first.
  void Suspend(EventLoop& loop, std::coroutine_handle<> handle);
  // Disarms everything; concrete awaiters call it from their destructors.
  void Abandon() noexcept;
  // Leaves the awaitable's own wait structure (an I/O slot, a timer...).
  virtual void Unlink() noexcept = 0;

  bool pending() const { return pending_; }
  EventLoop* loop() const { return loop_; }
  // The early-completion status, OK if the operation's own event woke it.
  absl::Status& status() { return status_; }

 private:
  // What a wait that can end early needs (a deadline timer, stop
  // callbacks); allocated only for such waits, so that the common one (no
  // deadline, no stoppable token) keeps awaiters small.
  struct Guards;
  void StopRequested() noexcept;
  static void DeadlinePassed(TimerNode* node);
  bool NeedsGuards() const noexcept;

  Cancellation cancellation_;
  std::stop_token ambient_token_;
  EventLoop* loop_ = nullptr;
  std::coroutine_handle<> handle_;
  absl::Status status_;
  bool pending_ = false;
  Guards* guards_ = nullptr;  // owned; from Suspend until Abandon
};

// An operation waiting for readiness on a registered descriptor.
class IoOperation : public Operation {
 public:
  // Retries the operation's syscall after a readiness event; returns true
  // when it finished (successfully or not), false on EAGAIN.
  virtual bool Attempt() noexcept = 0;

 protected:
  using Operation::Operation;
  IoOperation(IoOperation&&) = default;
  ~IoOperation() = default;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_OPERATION_H_
