// File: net/task.h
//
// Task<T> is a lazy coroutine that produces a T. It starts when awaited (or
// when handed to EventLoop::BlockOn / SpawnDetached), owns its coroutine
// frame, and is move-only. An exception thrown inside reaches whoever awaits
// it. A task that completes without suspending lets its awaiter simply
// continue, and one that completes later resumes its awaiter by symmetric
// transfer: a loop of a million immediately-completing awaits uses constant
// stack at every optimisation level (GCC emits the tail call that symmetric
// transfer relies on only at -O2).
//
//   conet::Task<int> Answer() { co_return 42; }
//   conet::Task<int> Twice() { co_return 2 * co_await Answer(); }
//
// Every task carries a std::stop_token (its "ambient" token). A task awaited
// by another inherits the awaiter's token unless it was given one; every
// conet awaitable inside it is cancelled when the token is stopped. That is
// how WithTimeout, WhenAny and TaskGroup cancel work they started.
//
//   std::stop_token token = co_await conet::CurrentStopToken();
//
// A GCC 12 bug to know about: a temporary of aggregate, lambda or
// initializer-list type passed as an argument inside a co_await expression
// is destroyed twice (`co_await f({a, b})`, `co_await f([&] {...})`,
// `co_await f(Options{...})`). Build such arguments as named locals first.
// The types conet expects inside co_await arguments (Cancellation,
// ConstBytes) are classes with constructors for this reason; its option
// structs (ListenOptions, WorkerOptions, ...) are aggregates, taken by
// functions that are not awaited, or else built as named locals.
// Inside a loop's condition the bug reaches converted class temporaries
// too: `while ((co_await Sleep(d, token)).ok())`, where the token becomes a
// temporary Cancellation, destroys it twice (seen as a crash when the
// frame is destroyed). Await in a statement of its own inside the loop.
// An `if` condition is no safer: `if (co_await Ready(token))`, the token
// passed by value, made the enclosing coroutine do nothing at all when it
// was started (not even its first statement, before the if). Await into a
// named local, then test it.
#ifndef CONET_NET_TASK_H_
#define CONET_NET_TASK_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <variant>

namespace conet {

template <typename T = void>
class Task;

// Awaiting CurrentStopToken() inside a Task yields the task's stop token
// without suspending.
struct CurrentStopToken {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) noexcept {
    token_ = handle.promise().stop_token();
    return false;
  }
  std::stop_token await_resume() noexcept { return std::move(token_); }

  std::stop_token token_;
};

// Implementation details follow.

namespace internal {

// What a detached task's frame calls, set by net/event_loop.cc (the only
// code that detaches tasks) as the program starts, so that //net:task needs
// nothing of the loop's to link: `finish` takes a completed frame out of
// the running loop's registry and destroys it; `terminate` reports an
// exception that escaped a detached task (std::terminate follows).
struct DetachedHooks {
  void (*finish)(std::coroutine_handle<> frame, uint32_t index) noexcept = nullptr;
  void (*terminate)() noexcept = nullptr;
};
inline DetachedHooks detached_hooks;

// An awaitable that wants its awaiting task's stop token declares
//   void InheritStopToken(const std::stop_token&);
template <typename A>
concept InheritsStopToken = requires(A& a, const std::stop_token& token) {
  a.InheritStopToken(token);
};

template <typename A>
concept HasMemberCoAwait = requires(A&& a) {
  static_cast<A&&>(a).operator co_await();
};

// Forwards the awaiter protocol to an awaiter that stays where it is.
template <typename A>
struct AwaiterRef {
  A* awaiter;
  bool await_ready() { return awaiter->await_ready(); }
  template <typename Handle>
  auto await_suspend(Handle handle) {
    return awaiter->await_suspend(handle);
  }
  decltype(auto) await_resume() { return awaiter->await_resume(); }
};

class PromiseBase {
 public:
  std::suspend_always initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <typename Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> handle) const noexcept {
      return handle.promise().Finished(handle.address());
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  // Hands the task's stop token to awaitables that want it. Returns a proxy
  // that refers to the awaitable (GCC would otherwise copy it into the
  // frame); the awaitable itself lives until the co_await completes.
  template <typename A>
  auto await_transform(A&& awaitable) const noexcept {
    if constexpr (InheritsStopToken<std::remove_reference_t<A>>) {
      if (stop_token_.stop_possible()) awaitable.InheritStopToken(stop_token_);
    }
    if constexpr (HasMemberCoAwait<A>) {
      return std::forward<A>(awaitable).operator co_await();
    } else {
      return AwaiterRef<std::remove_reference_t<A>>{&awaitable};
    }
  }

  // Returns what runs next once the task `self` has completed. Kept out of
  // the awaiter (and so out of every coroutine's own code) to keep frames
  // small: deep chains of awaits nest them on the stack.
  [[gnu::noinline]] std::coroutine_handle<> Finished(void* self) noexcept {
    if (detached_) {
      detached_hooks.finish(std::coroutine_handle<>::from_address(self), detached_index_);
      return std::noop_coroutine();
    }
    // Second to arrive resumes the awaiter; first means the awaiter is
    // still inside Task::Awaiter::await_suspend and will just continue.
    if (!awaiter_waiting_.exchange(true, std::memory_order_acq_rel)) {
      return std::noop_coroutine();
    }
    return continuation_ ? continuation_ : std::noop_coroutine();
  }
  // Makes `next` the coroutine to resume on completion; it is (or will be)
  // suspended by the time this task completes.
  void set_continuation(std::coroutine_handle<> next) noexcept {
    continuation_ = next;
    awaiter_waiting_.store(true, std::memory_order_relaxed);
  }
  // Starts the task on behalf of `awaiter`; returns true if the awaiter must
  // suspend, false if the task already completed.
  bool StartFor(std::coroutine_handle<> awaiter, std::coroutine_handle<> self) {
    continuation_ = awaiter;
    awaiter_waiting_.store(false, std::memory_order_relaxed);
    self.resume();
    return !awaiter_waiting_.exchange(true, std::memory_order_acq_rel);
  }
  const std::stop_token& stop_token() const noexcept { return stop_token_; }
  void set_stop_token(std::stop_token token) noexcept {
    stop_token_ = std::move(token);
    has_own_token_ = true;
  }
  void inherit_stop_token(const std::stop_token& token) noexcept {
    if (!has_own_token_) stop_token_ = token;
  }
  // For EventLoop::SpawnDetached: nobody awaits the task; its frame
  // destroys itself on completion. `index` is its place in the loop's
  // registry of detached frames.
  void set_detached(uint32_t index) noexcept {
    detached_ = true;
    detached_index_ = index;
  }
  bool detached() const noexcept { return detached_; }

 private:
  std::coroutine_handle<> continuation_;
  std::stop_token stop_token_;
  uint32_t detached_index_ = 0;
  std::atomic<bool> awaiter_waiting_{true};
  bool has_own_token_ = false;
  bool detached_ = false;
};

template <typename T>
class Promise final : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  template <typename U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    result_.template emplace<1>(std::forward<U>(value));
  }
  T TakeResult() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class Promise<void> final : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void unhandled_exception() noexcept {
    // Nobody would see it: fail loudly, as an exception leaving a
    // std::thread does.
    if (detached()) {
      detached_hooks.terminate();
      std::terminate();
    }
    exception_ = std::current_exception();
  }
  void return_void() const noexcept {}
  void TakeResult() {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::exception_ptr exception_;
};

}  // namespace internal

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = internal::Promise<T>;
  using value_type = T;

  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      Destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  // Destroys the frame (a task never started simply never runs).
  ~Task() { Destroy(); }

  // Reports whether the task holds a coroutine.
  bool Valid() const noexcept { return static_cast<bool>(handle_); }
  // Gives the task its own stop token (instead of inheriting its awaiter's).
  void SetStopToken(std::stop_token token) noexcept {
    handle_.promise().set_stop_token(std::move(token));
  }
  void InheritStopToken(const std::stop_token& token) noexcept {
    handle_.promise().inherit_stop_token(token);
  }

  struct Awaiter {
    std::coroutine_handle<promise_type> handle;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> awaiting) {
      return handle.promise().StartFor(awaiting, handle);
    }
    T await_resume() { return handle.promise().TakeResult(); }
  };
  // Starts the task and suspends the awaiter until it completes; yields its
  // value or rethrows its exception.
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }
  Awaiter operator co_await() & noexcept { return Awaiter{handle_}; }

  // For conet's own drivers: the raw frame, ownership kept by the Task.
  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }
  // For conet's own drivers: the raw frame, ownership handed over.
  std::coroutine_handle<promise_type> Release() noexcept { return std::exchange(handle_, {}); }

 private:
  friend class internal::Promise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
  void Destroy() noexcept {
    if (handle_) std::exchange(handle_, {}).destroy();
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace internal {

template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}

inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

}  // namespace internal
}  // namespace conet

#endif  // CONET_NET_TASK_H_
