// File: net/task_group.h
//
// TaskGroup is a scope for concurrent child tasks (structured concurrency):
// children are started on the current loop, and none outlives the group.
//
//   conet::TaskGroup group;
//   for (auto& peer : peers) group.Spawn(Greet(peer));
//   absl::Status all = co_await group.Join();
//
// Join() waits for every child. Children returning absl::Status report the
// first error through Join(), and that error stops the other children (their
// stop tokens are stopped); an exception does the same and is rethrown by
// Join(). Cancelling the task that awaits Join() stops every child, and Join
// still waits for them to finish.
//
// A finished child's frame, with its by-value parameters (a connection's
// socket), is destroyed on the loop's next pass, not kept until Join.
//
// Always co_await Join() before the group goes out of scope. A group
// destroyed with children still running stops them and destroys their
// frames at their current suspension point (no child outlives the group, and
// nothing hangs), but their remaining code never runs.
#ifndef CONET_NET_TASK_GROUP_H_
#define CONET_NET_TASK_GROUP_H_

#include <coroutine>
#include <cstddef>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <stop_token>
#include <variant>

#include "absl/status/status.h"
#include "net/event_loop.h"
#include "net/internal/join.h"
#include "net/internal/operation.h"
#include "net/task.h"

namespace conet {

class TaskGroup {
 public:
  TaskGroup();
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;
  // Stops and destroys children still running (see above).
  ~TaskGroup();

  // Starts `child` from the current loop's ready queue (or now, if no loop
  // runs on this thread). The child gets the group's stop token.
  void Spawn(Task<void> child);
  void Spawn(Task<absl::Status> child);

  class JoinAwaiter;
  // Waits for every child; co_await yields OK or the first child error, or
  // rethrows the first exception.
  JoinAwaiter Join();

  // Stops every child (thread-safe).
  void RequestStop() noexcept { source_.request_stop(); }
  std::stop_token stop_token() const noexcept { return source_.get_token(); }
  // Returns how many children have not finished.
  size_t Running() const noexcept { return running_.size(); }

  class JoinAwaiter {
   public:
    explicit JoinAwaiter(TaskGroup* group) : group_(group) {}
    // Movable until it suspends (the stop callback exists only after).
    JoinAwaiter(JoinAwaiter&& other) noexcept
        : group_(other.group_), token_(std::move(other.token_)) {}
    void InheritStopToken(const std::stop_token& token) { token_ = token; }
    bool await_ready() const noexcept { return group_->running_.empty(); }
    ~JoinAwaiter();
    void await_suspend(std::coroutine_handle<> awaiter);
    absl::Status await_resume();

   private:
    friend class TaskGroup;
    struct ForwardStop {
      TaskGroup* group;
      void operator()() const noexcept { group->RequestStop(); }
    };
    TaskGroup* group_;
    std::stop_token token_;
    std::optional<std::stop_callback<ForwardStop>> forward_;
    EventLoop* loop_ = nullptr;
    internal::ReadyNode resume_;  // the joiner, queued once all are done
  };

 private:
  template <typename Owner, typename Key>
  friend class internal::Notifier;
  template <typename Owner>
  friend internal::ReapCallback<Owner> internal::MakeReapCallback(Owner* owner);
  struct Child;
  void Start(std::variant<Task<void>, Task<absl::Status>> task);
  std::coroutine_handle<> ChildDone(Child* child) noexcept;
  // Destroys finished children (their frames and by-value parameters).
  void Reap() noexcept;
  // Has `loop` run Reap soon: a finished child's frame cannot be destroyed
  // on its own stack, but must not wait for the next Spawn or Join either
  // (a handler's socket would stay open, its client waiting).
  void ScheduleReap(EventLoop* loop) noexcept;

  std::stop_source source_;
  std::list<std::unique_ptr<Child>> running_;
  std::list<std::unique_ptr<Child>> finished_;  // destroyed from the loop, soon
  internal::ReapCallback<TaskGroup> reaper_;    // made on first use
  internal::ReadyNode reap_;                    // queues reaper_ on reap_loop_
  EventLoop* reap_loop_ = nullptr;
  JoinAwaiter* joiner_ = nullptr;
  absl::Status first_error_;
  std::exception_ptr first_exception_;
};

}  // namespace conet

#endif  // CONET_NET_TASK_GROUP_H_
