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
        ambient_token_(other.ambient_token_),
        loop_(other.loop_),
        status_(std::move(other.status_)),
        may_end_early_(other.may_end_early_) {}
  Operation& operator=(Operation&&) = delete;

  // Adopts the awaiting task's stop token (see net/task.h). It is kept by
  // address: it lives in the awaiting task's promise, which outlives this
  // awaiter (the awaiter is a temporary of that task's co_await).
  void InheritStopToken(const std::stop_token& token) noexcept {
    ambient_token_ = &token;
    may_end_early_ = may_end_early_ || token.stop_possible();
  }

  // The loop's side. Wakes the waiter with `status`, resuming it now
  // (`resume_now`) or from the loop's ready queue. No-op unless pending.
  void Wake(absl::Status status, bool resume_now);
  // Wakes the waiter now with OK, for the poll loop: the operation's own
  // event finished it and the caller has already taken it out of its wait
  // structure. The operation must be pending.
  void CompleteUnlinked() {
    pending_ = false;
    if (guards_ != nullptr) {
      DisarmDeadline();
    } else {
      armed_ = false;  // nothing left for Abandon to undo
    }
    ready_node.handle.resume();
  }
  // Ends the wait with CancelledError; called on the loop's thread.
  void CancelFromLoop() { Wake(absl::CancelledError("operation cancelled"), false); }
  // In the loop's ready queue while a wake is deferred; its handle is the
  // waiting coroutine from Suspend on.
  ReadyNode ready_node;

 protected:
  // Awaitable-returning calls default their Cancellation to
  // kNoCancellation; recognising it by address lets the compiler see, in
  // the common case, that nothing can end the wait early.
  explicit Operation(const Cancellation& cancellation, EventLoop* loop = nullptr) noexcept
      : Operation(&cancellation == &kNoCancellation ? nullptr : &cancellation, loop) {}
  ~Operation() = default;

  // Returns the error to complete with at once if a token is already stopped
  // or the deadline has passed; OK otherwise (at once when neither a token
  // nor a deadline can end the wait, the common case).
  absl::Status StopStatus() const {
    if (!may_end_early_) return absl::OkStatus();
    return CheckStopped();
  }
  // Marks the operation pending on `loop` and arms deadline and stop
  // callbacks. The awaiter must be linked into its wait structure first.
  void Suspend(EventLoop& loop, std::coroutine_handle<> handle) {
    loop_ = &loop;
    ready_node.handle = handle;
    pending_ = true;
    armed_ = true;
    if (may_end_early_) ArmGuards();
  }
  // Disarms everything; concrete awaiters call it from their destructors.
  void Abandon() noexcept {
    if (armed_) AbandonSlow();
  }
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
  Operation(const Cancellation* cancellation, EventLoop* loop) noexcept
      : cancellation_(cancellation != nullptr ? *cancellation : Cancellation()),
        loop_(loop),
        may_end_early_(cancellation != nullptr &&
                       (cancellation->token().stop_possible() || cancellation->has_deadline())) {}
  absl::Status CheckStopped() const;
  void ArmGuards();
  void DisarmDeadline() noexcept;
  void AbandonSlow() noexcept;
  void StopRequested() noexcept;
  static void DeadlinePassed(TimerNode* node);

  Cancellation cancellation_;
  const std::stop_token* ambient_token_ = nullptr;  // the awaiting task's
  EventLoop* loop_;
  absl::Status status_;
  Guards* guards_ = nullptr;  // owned; from Suspend until Abandon
  bool pending_ = false;
  // Whether a token or a deadline may end the wait (a token may have lost
  // its source since: then the guards are merely unneeded).
  bool may_end_early_;
  // Whether Abandon has anything to undo: set by Suspend, cleared when the
  // operation's own event completes a wait that had no guards.
  bool armed_ = false;

 public:
  // Set (under the loop's remote lock) while queued for a cross-thread
  // cancel. (Declared last, beside the other flags, to keep awaiters small.)
  bool remote_queued = false;
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
