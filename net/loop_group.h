// File: net/loop_group.h
//
// LoopGroup runs one EventLoop per thread: conet's way to use several cores
// (one loop per core, typically with SO_REUSEPORT listeners so the kernel
// spreads connections; no work stealing, no shared locks on the hot path).
//
//   auto group = conet::LoopGroup::Create(2);
//   (*group)->SpawnOnEach([](int index) { return Serve(index); });
//   (*group)->Start();
//   ...
//   (*group)->Stop();  // loops return; Join() or the destructor waits
//
// RunOn hands a task to one loop of the group and lets the caller, a
// coroutine on any loop (or a BlockOn on another thread), await its result:
//
//   conet::Task<absl::StatusOr<int>> CountSessions();  // runs on loop 1
//   auto make = [] { return CountSessions(); };         // a named local
//   absl::StatusOr<int> n = co_await (*group)->RunOn(1, make);
#ifndef CONET_NET_LOOP_GROUP_H_
#define CONET_NET_LOOP_GROUP_H_

#include <concepts>
#include <coroutine>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/operation.h"
#include "net/task.h"

namespace conet {

namespace internal {
template <typename F>
concept MakesTask = std::invocable<F&&> && requires {
  typename std::invoke_result_t<F&&>::value_type;
} && std::same_as<std::invoke_result_t<F&&>, Task<typename std::invoke_result_t<F&&>::value_type>>;
template <typename F>
using MadeValue = typename std::invoke_result_t<F&&>::value_type;
template <typename T>
struct RemoteResultOf;
// What RunOn yields for a Task<T>: a status, which may also say why the
// hop to the other loop failed.
template <typename T>
using RemoteResult = typename RemoteResultOf<T>::type;
}  // namespace internal

class LoopGroup {
 public:
  // Creates `threads` loops (threads >= 1); no thread runs yet.
  static absl::StatusOr<std::unique_ptr<LoopGroup>> Create(int threads);
  // Stops every loop, then joins every thread.
  ~LoopGroup();

  int size() const { return static_cast<int>(loops_.size()); }
  EventLoop& loop(int index) { return *loops_.at(index); }

  // Calls `make_task(index)` on each loop's own thread and spawns the task
  // there (detached). Safe before or after Start().
  void SpawnOnEach(absl::AnyInvocable<Task<void>(int)> make_task);

  // Calls `make_task()` on loop `index`'s thread and runs the Task<T> it
  // returns there; the caller, on any loop, awaits its result.
  //
  // co_await yields the task's result as a status: absl::Status for a
  // Task<void> or Task<absl::Status>, absl::StatusOr<U> for a
  // Task<absl::StatusOr<U>>, absl::StatusOr<T> for any other Task<T>. An
  // exception the task (or make_task) throws is rethrown to the caller. The
  // hop's own errors: OutOfRangeError for an index outside the group,
  // CancelledError if the loop was destroyed before the task finished (the
  // group may go while calls are in flight; it must exist when one starts).
  //
  // `make_task` is moved to the other thread, and the task runs there and
  // may outlive the caller (see below): both must own, or share, what they
  // touch. The result must not be tied to the other loop (a socket
  // registered with it). Pass the callable as a named local (GCC 12
  // destroys a lambda temporary inside a co_await twice).
  //
  // The loop runs the task once it runs (before Start(), it waits). Any
  // number of calls may be in flight, from and to any loops, a loop's own
  // index included; the caller resumes on its own loop.
  //
  // Cancellation: `cancel` or the awaiting task's stop token ends the wait
  // at once with CancelledError (DeadlineExceededError for the deadline);
  // then, as also when the caller's frame is destroyed while it waits, the
  // task's stop token is stopped and its result is dropped when it comes.
  // A caller stopped before the call starts never starts the task.
  template <typename MakeTask>
  requires internal::MakesTask<MakeTask>
  auto RunOn(int index, MakeTask make_task, Cancellation cancel = {})
      -> Task<internal::RemoteResult<internal::MadeValue<MakeTask>>>;

  // Starts one thread per loop, each running its loop until Stop().
  void Start();
  // Asks every loop to return from Run() (thread-safe).
  void Stop() noexcept;
  // Waits for the threads to end (for a Stop() called first, or by a task).
  void Join();

 private:
  explicit LoopGroup(std::vector<std::unique_ptr<EventLoop>> loops) : loops_(std::move(loops)) {}
  // Returns loop `index`, or OutOfRangeError naming the call.
  absl::StatusOr<EventLoop*> LoopAt(int index) const;

  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

// Implementation details follow.

namespace internal {

template <typename T>
struct RemoteResultOf {
  using type = absl::StatusOr<T>;
};
template <>
struct RemoteResultOf<void> {
  using type = absl::Status;
};
template <>
struct RemoteResultOf<absl::Status> {
  using type = absl::Status;
};
template <typename U>
struct RemoteResultOf<absl::StatusOr<U>> {
  using type = absl::StatusOr<U>;
};

class RemoteWait;

// What a RunOn caller and the task it started on another loop share. Each
// side holds it, so either may go first: a caller cancelled (or destroyed)
// leaves the task nothing to wake, and a task that finishes late writes
// into this, not into the caller's frame.
class RemoteCall {
 public:
  // The task's side, on its loop: the task finished (`abandoned`: its loop
  // was destroyed first); wakes the caller, through its loop, if it still
  // waits. The result and `exception` are written before. The task's side
  // hands its reference over: the caller, when it waits, releases the last
  // one (and with it the value and exception) on its own thread.
  static void Finish(std::shared_ptr<RemoteCall> call, bool abandoned) noexcept;
  std::stop_token stop_token() const { return stop_.get_token(); }
  // The caller's side, once woken: whether the task never finished.
  bool abandoned() const;

  std::exception_ptr exception;

 private:
  friend class RemoteWait;
  static void WakeWaiter(const std::shared_ptr<RemoteCall>& call);

  mutable std::mutex mu_;
  // Cleared by the waiter, under mu_, before it (and so its loop) goes.
  RemoteWait* waiter_ ABSL_GUARDED_BY(mu_) = nullptr;
  EventLoop* waiter_loop_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool abandoned_ ABSL_GUARDED_BY(mu_) = false;
  std::stop_source stop_;  // the task's stop token
};

// A RemoteCall with room for the task's value.
template <typename T>
class RemoteCallOf final : public RemoteCall {
 public:
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> value;

  // Returns the value (rethrowing the task's exception).
  RemoteResult<T> Take() {
    if (exception) std::rethrow_exception(exception);
    if constexpr (std::is_void_v<T>) {
      return absl::OkStatus();
    } else {
      return std::move(*value);
    }
  }
};

// The task's side's hold on the call: finishes it as abandoned if dropped
// before Done() (the loop destroyed the task's frame, or the posted start).
template <typename T>
class RemoteHandle {
 public:
  explicit RemoteHandle(std::shared_ptr<RemoteCallOf<T>> call) : call_(std::move(call)) {}
  RemoteHandle(RemoteHandle&&) noexcept = default;
  RemoteHandle& operator=(RemoteHandle&&) = delete;
  ~RemoteHandle() {
    if (call_ != nullptr) RemoteCall::Finish(std::move(call_), /*abandoned=*/true);
  }
  RemoteCallOf<T>& call() { return *call_; }
  void Done() { RemoteCall::Finish(std::move(call_), /*abandoned=*/false); }

 private:
  std::shared_ptr<RemoteCallOf<T>> call_;
};

// The caller's wait: posts `start` to the task's loop when it suspends and
// completes when the task's side finishes the call.
class RemoteWait final : public Operation {
 public:
  RemoteWait(std::shared_ptr<RemoteCall> call, EventLoop* target, int index,
             absl::AnyInvocable<void() &&> start, const Cancellation& cancel)
      : Operation(cancel),
        call_(std::move(call)),
        target_(target),
        index_(index),
        start_(std::move(start)) {}
  ~RemoteWait() { Abandon(); }

  bool await_ready() noexcept {
    status() = StopStatus();
    return !status().ok();
  }
  bool await_suspend(std::coroutine_handle<> handle);
  // Returns OK once the task finished, else why the wait ended.
  absl::Status await_resume();

 private:
  // Stops waiting; stops the task if it has not finished.
  void Unlink() noexcept override;

  std::shared_ptr<RemoteCall> call_;
  EventLoop* target_;
  int index_;
  absl::AnyInvocable<void() &&> start_;
};

// Runs the task on its loop and records how it ended in the call.
template <typename T, typename MakeTask>
Task<void> RunRemote(MakeTask make_task, RemoteHandle<T> handle) {
  RemoteCallOf<T>& call = handle.call();
  try {
    Task<T> task = std::move(make_task)();
    task.SetStopToken(call.stop_token());
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
    } else {
      call.value.emplace(co_await std::move(task));
    }
  } catch (...) {
    call.exception = std::current_exception();
  }
  handle.Done();
}

}  // namespace internal

template <typename MakeTask>
requires internal::MakesTask<MakeTask>
auto LoopGroup::RunOn(int index, MakeTask make_task, Cancellation cancel)
    -> Task<internal::RemoteResult<internal::MadeValue<MakeTask>>> {
  using T = internal::MadeValue<MakeTask>;
  absl::StatusOr<EventLoop*> target = LoopAt(index);
  if (!target.ok()) co_return target.status();
  auto call = std::make_shared<internal::RemoteCallOf<T>>();
  absl::AnyInvocable<void()&&> start = [loop = *target, make = std::move(make_task),
                                        handle = internal::RemoteHandle<T>(call)]() mutable {
    loop->SpawnDetached(internal::RunRemote<T>(std::move(make), std::move(handle)));
  };
  internal::RemoteWait wait(call, *target, index, std::move(start), cancel);
  absl::Status waited = co_await wait;
  if (!waited.ok()) co_return waited;
  co_return call->Take();
}

}  // namespace conet

#endif  // CONET_NET_LOOP_GROUP_H_
