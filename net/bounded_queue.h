// File: net/bounded_queue.h
//
// BoundedQueue<T> hands values from task to task, on one loop or across
// loops on different threads (a producer on loop 0 of a LoopGroup, a
// consumer on loop 1). It holds at most `capacity` values: Push waits while
// it is full and Pop while it is empty, so producers are held to the pace of
// their consumers. Close() says no more will come.
//
//   conet::BoundedQueue<std::string> lines(64);
//   // a producer
//   absl::Status pushed = co_await lines.Push(std::move(line));
//   lines.Close();  // consumers still get what is queued
//   // a consumer
//   while (true) {
//     absl::StatusOr<std::string> next = co_await lines.Pop();
//     if (absl::IsOutOfRange(next.status())) break;  // closed and drained
//     ...
//   }
//
// co_await Push(value) yields OK once the value is in the queue, or
// FailedPreconditionError if the queue is (or, while it waits, becomes)
// closed. co_await Pop() yields the oldest value, or OutOfRangeError once the
// queue is closed and empty (a Pop waiting at Close gets the values still
// queued first). Both yield CancelledError if a stop was requested first
// (the Cancellation's token or the awaiting task's own token),
// DeadlineExceededError if the Cancellation's deadline came first, and
// FailedPreconditionError if the call had to wait and no EventLoop runs on
// this thread. TryPush and TryPop never wait: they fail with
// UnavailableError where Push and Pop would wait.
//
// Push takes its value by rvalue reference and moves from it only when it
// succeeds: a Push that fails or is cancelled leaves the value with the
// caller. The value is referred to until co_await yields, so await the call
// at once; build a value of aggregate type as a named local first (the GCC
// 12 bug in net/task.h).
//
// Concurrency: every call may be made from any thread; a waiter is resumed
// on its own loop's thread. Values come out in the order they went in, and
// waiting Pushes and Pops are served in the order they started to wait: a
// newcomer never overtakes them.
//
// Cancellation never loses a value: one promised to a Pop that is cancelled,
// times out or has its frame destroyed before it resumes goes to the next
// Pop (or stays queued), and so does the room promised to a Push. A frame
// destroyed while it waits leaves no registration behind. The queue must
// outlive every wait on it (destroying it while a task waits aborts with a
// message).
#ifndef CONET_NET_BOUNDED_QUEUE_H_
#define CONET_NET_BOUNDED_QUEUE_H_

#include <coroutine>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/cancellation.h"
#include "net/internal/queue_core.h"
#include "net/internal/wait_list.h"

namespace conet {

namespace internal {
template <typename T>
class PushAwaiter;
template <typename T>
class PopAwaiter;
}  // namespace internal

template <typename T>
class BoundedQueue {
 public:
  // Holds at most `capacity` values (0 counts as 1).
  explicit BoundedQueue(size_t capacity) : core_(capacity) {}

  // Suspends while the queue is full, then stores `value` (moved from only
  // on success).
  internal::PushAwaiter<T> Push(T&& value, const Cancellation& cancel = kNoCancellation);
  // Suspends while the queue is empty, then takes the oldest value.
  internal::PopAwaiter<T> Pop(const Cancellation& cancel = kNoCancellation);
  // Stores `value` if there is room now (moved from only on success).
  absl::Status TryPush(T&& value);
  // Takes the oldest value if there is one now.
  absl::StatusOr<T> TryPop();
  // Closes the queue: no more values; Pops drain what is queued.
  void Close();

  // Report the queue's state (at once stale if other threads use it).
  bool closed() const;
  size_t size() const;
  size_t capacity() const { return core_.capacity(); }

 private:
  friend class internal::PushAwaiter<T>;
  friend class internal::PopAwaiter<T>;
  // With the mutex held, and room or a value there.
  void StoreLocked(T& value) {
    items_.push_back(std::move(value));
    core_.Stored();
  }
  T TakeLocked() {
    T value = std::move(items_.front());
    items_.pop_front();
    core_.Taken();
    return value;
  }

  internal::QueueCore core_;
  std::deque<T> items_;  // under core_.mu()
};

// Implementation details follow.

namespace internal {

template <typename T>
class PushAwaiter final : public Waiter {
 public:
  PushAwaiter(BoundedQueue<T>& queue, T& value, const Cancellation& cancel)
      : Waiter(queue.core_.mu(), /*owns_grant=*/true, cancel), queue_(&queue), value_(&value) {}
  PushAwaiter(PushAwaiter&&) = default;
  ~PushAwaiter() { Retire(); }

  bool await_suspend(std::coroutine_handle<> handle) {
    QueueCore& core = queue_->core_;
    std::unique_lock<std::mutex> lock(core.mu());
    if (core.closed()) {
      status() = QueueClosedError("BoundedQueue::Push");
      return false;
    }
    if (core.HasRoom()) {
      queue_->StoreLocked(*value_);
      return false;
    }
    return Wait(lock, core.pushers(), "BoundedQueue::Push", handle);
  }
  absl::Status await_resume() {
    MarkClaimed();
    if (granted()) Store();
    return std::move(status());
  }

 private:
  // Fills the room this Push was promised, unless the queue closed since.
  void Store() {
    QueueCore& core = queue_->core_;
    std::lock_guard<std::mutex> lock(core.mu());
    core.UseRoom();
    if (core.closed()) {
      status() = QueueClosedError("BoundedQueue::Push");
      return;
    }
    queue_->StoreLocked(*value_);
  }
  void GiveBack() noexcept override { queue_->core_.ReturnRoom(); }

  BoundedQueue<T>* queue_;
  T* value_;
};

template <typename T>
class PopAwaiter final : public Waiter {
 public:
  PopAwaiter(BoundedQueue<T>& queue, const Cancellation& cancel)
      : Waiter(queue.core_.mu(), /*owns_grant=*/true, cancel), queue_(&queue) {}
  PopAwaiter(PopAwaiter&&) = default;
  ~PopAwaiter() { Retire(); }

  bool await_suspend(std::coroutine_handle<> handle) {
    QueueCore& core = queue_->core_;
    std::unique_lock<std::mutex> lock(core.mu());
    if (core.CanTake()) {
      value_.emplace(queue_->TakeLocked());
      return false;
    }
    if (core.Drained()) {
      status() = QueueEndError("BoundedQueue::Pop");
      return false;
    }
    return Wait(lock, core.poppers(), "BoundedQueue::Pop", handle);
  }
  absl::StatusOr<T> await_resume() {
    MarkClaimed();
    if (!status().ok()) return std::move(status());
    if (granted()) return Take();
    return *std::move(value_);
  }

 private:
  // Takes the value this Pop was promised.
  T Take() {
    QueueCore& core = queue_->core_;
    std::lock_guard<std::mutex> lock(core.mu());
    core.UseValue();
    return queue_->TakeLocked();
  }
  void GiveBack() noexcept override { queue_->core_.ReturnValue(); }

  BoundedQueue<T>* queue_;
  std::optional<T> value_;  // taken without waiting
};

}  // namespace internal

template <typename T>
internal::PushAwaiter<T> BoundedQueue<T>::Push(T&& value, const Cancellation& cancel) {
  return internal::PushAwaiter<T>(*this, value, cancel);
}

template <typename T>
internal::PopAwaiter<T> BoundedQueue<T>::Pop(const Cancellation& cancel) {
  return internal::PopAwaiter<T>(*this, cancel);
}

template <typename T>
absl::Status BoundedQueue<T>::TryPush(T&& value) {
  std::lock_guard<std::mutex> lock(core_.mu());
  if (core_.closed()) return internal::QueueClosedError("BoundedQueue::TryPush");
  if (!core_.HasRoom()) return absl::UnavailableError("BoundedQueue::TryPush: the queue is full");
  StoreLocked(value);
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> BoundedQueue<T>::TryPop() {
  std::lock_guard<std::mutex> lock(core_.mu());
  if (core_.CanTake()) return TakeLocked();
  if (core_.Drained()) return internal::QueueEndError("BoundedQueue::TryPop");
  return absl::UnavailableError("BoundedQueue::TryPop: the queue is empty");
}

template <typename T>
void BoundedQueue<T>::Close() {
  std::lock_guard<std::mutex> lock(core_.mu());
  core_.Close();
}

template <typename T>
bool BoundedQueue<T>::closed() const {
  std::lock_guard<std::mutex> lock(core_.mu());
  return core_.closed();
}

template <typename T>
size_t BoundedQueue<T>::size() const {
  std::lock_guard<std::mutex> lock(core_.mu());
  return core_.size();
}

}  // namespace conet

#endif  // CONET_NET_BOUNDED_QUEUE_H_
