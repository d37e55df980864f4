// File: net/internal/join.h
//
// JoinState runs a fixed set of child tasks concurrently and resumes one
// awaiter when the last has completed. Each child's completion transfers to a
// small notifier coroutine (owned here) that counts it, so results stay in
// the children's own promises until the combinator takes them. Children get
// the join's stop token; `stop_on_first` stops the others when one finishes.
#ifndef CONET_NET_INTERNAL_JOIN_H_
#define CONET_NET_INTERNAL_JOIN_H_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <stop_token>
#include <utility>
#include <variant>
#include <vector>

#include "net/event_loop.h"
#include "net/task.h"

namespace conet::internal {

// Owns a suspended coroutine frame and destroys it with itself (move-only).
class OwnedFrame {
 public:
  OwnedFrame() = default;
  explicit OwnedFrame(std::coroutine_handle<> handle) : handle_(handle) {}
  OwnedFrame(OwnedFrame&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  OwnedFrame& operator=(OwnedFrame&& other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~OwnedFrame() {
    if (handle_) handle_.destroy();
  }
  std::coroutine_handle<> handle() const { return handle_; }
  explicit operator bool() const { return static_cast<bool>(handle_); }

 private:
  std::coroutine_handle<> handle_;
};

// Resumed when a child task completes (it is the child's continuation); its
// final suspend continues with whatever `owner->ChildDone(key)` returns.
// Used by JoinState (key: the child's index) and TaskGroup (key: its Child).
template <typename Owner, typename Key>
class Notifier : public OwnedFrame {
 public:
  class promise_type {
   public:
    promise_type(Owner* owner, Key key) : owner_(owner), key_(key) {}
    Notifier get_return_object() {
      return Notifier(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct Final {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> me) const noexcept {
        return me.promise().owner_->ChildDone(me.promise().key_);
      }
      void await_resume() const noexcept {}
    };
    Final final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }

   private:
    Owner* owner_;
    Key key_;
  };

  Notifier() = default;

 private:
  explicit Notifier(std::coroutine_handle<promise_type> handle) : OwnedFrame(handle) {}
};

// Makes a notifier for `key` of `owner` (not started: it runs when resumed).
template <typename Owner, typename Key>
Notifier<Owner, Key> MakeNotifier(Owner*, Key) {
  co_return;
}

// A coroutine that calls `owner->Reap()` each time it is resumed, then
// suspends again: a callback that the loop's ready queue (which runs
// coroutine handles) can run. Not started until first resumed; its owner
// destroys it. Used by TaskGroup to destroy finished children from the
// loop, off the stack of the child that just finished.
template <typename Owner>
class ReapCallback : public OwnedFrame {
 public:
  class promise_type {
   public:
    ReapCallback get_return_object() {
      return ReapCallback(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }
  };

  ReapCallback() = default;

 private:
  explicit ReapCallback(std::coroutine_handle<promise_type> handle) : OwnedFrame(handle) {}
};

// Makes the callback for `owner` (Reap must not throw).
template <typename Owner>
ReapCallback<Owner> MakeReapCallback(Owner* owner) {
  while (true) {
    owner->Reap();
    co_await std::suspend_always{};
  }
}

class JoinState {
 public:
  explicit JoinState(bool stop_on_first) : stop_on_first_(stop_on_first) {}
  JoinState(const JoinState&) = delete;
  ~JoinState() {
    if (loop_ != nullptr) internal::LoopAccess::Unschedule(*loop_, &resume_);
  }

  // Adds a child (not started yet); it will observe this join's stop token.
  template <typename T>
  void Add(Task<T>& child) {
    child.SetStopToken(source_.get_token());
    children_.push_back(
        {child.handle(), &child.handle().promise(), MakeNotifier(this, children_.size())});
  }
  std::stop_source& stop_source() { return source_; }
  // The first child to complete (valid after the join).
  size_t first() const { return first_; }

  // Starts every child and suspends until all have completed.
  bool await_ready() const noexcept { return children_.empty(); }
  bool await_suspend(std::coroutine_handle<> awaiter) noexcept {
    resume_.handle = awaiter;
    loop_ = EventLoop::Current();
    remaining_ = children_.size() + 1;  // +1: held while starting them
    for (Child& child : children_) {
      child.promise->set_continuation(child.notifier.handle());
      child.task.resume();
    }
    return --remaining_ != 0;
  }
  void await_resume() const noexcept {}

  // Called by child `index`'s notifier; returns what to resume next.
  std::coroutine_handle<> ChildDone(size_t index) noexcept {
    if (first_ == kNone) {
      first_ = index;
      if (stop_on_first_) source_.request_stop();
    }
    if (--remaining_ != 0) return std::noop_coroutine();
    // The awaiter destroys the children; it must not run on top of this
    // child's frame (at -O0 symmetric transfer is a nested call), so it is
    // resumed from the loop.
    if (loop_ == nullptr) return resume_.handle;
    internal::LoopAccess::Schedule(*loop_, &resume_);
    return std::noop_coroutine();
  }

 private:
  static constexpr size_t kNone = ~size_t{0};
  struct Child {
    std::coroutine_handle<> task;
    PromiseBase* promise;
    Notifier<JoinState, size_t> notifier;
  };

  bool stop_on_first_;
  std::stop_source source_;
  std::vector<Child> children_;
  EventLoop* loop_ = nullptr;
  ReadyNode resume_;
  size_t remaining_ = 0;
  size_t first_ = kNone;
};

// Forwards a stop request from one token to a stop_source.
struct ForwardStop {
  std::stop_source* target;
  void operator()() const noexcept { target->request_stop(); }
};

template <typename T>
using NonVoid = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Takes a completed task's result (rethrowing its exception).
template <typename T>
NonVoid<T> TakeResult(Task<T>& task) {
  if constexpr (std::is_void_v<T>) {
    task.handle().promise().TakeResult();
    return {};
  } else {
    return task.handle().promise().TakeResult();
  }
}

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_JOIN_H_
