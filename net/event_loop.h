// File: net/event_loop.h
//
// EventLoop runs coroutines on one thread: one epoll instance, a timer heap
// and a ready queue. Descriptors join the epoll set once (edge-triggered),
// when an operation first has to wait on them, and I/O is optimistic: an operation tries its
// syscall first and suspends only on EAGAIN; the poll loop resumes it inline when the descriptor is
// ready.
//
//   conet::Task<int> Compute() {
//     co_await conet::Sleep(absl::Milliseconds(1));
//     co_return 7;
//   }
//   auto loop = conet::EventLoop::Create();
//   int seven = (*loop)->BlockOn(Compute());
//
// A loop belongs to the thread that runs it; only Post() and Stop() may be
// called from other threads. Destroying a loop destroys every coroutine frame
// it still holds (detached tasks and everything they await). Every socket
// and AsyncFd registered with a loop must be destroyed before the loop is;
// debug builds abort with a message naming the descriptor otherwise.
#ifndef CONET_NET_EVENT_LOOP_H_
#define CONET_NET_EVENT_LOOP_H_

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/internal/intrusive_list.h"
#include "net/internal/operation.h"
#include "net/internal/poller.h"
#include "net/internal/timer_heap.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet {

namespace internal {
class IoOperation;
class LoopAccess;
}  // namespace internal

class EventLoop {
 public:
  // Creates a loop (an epoll instance and an eventfd for wake-ups).
  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  // Destroys every frame still held: detached tasks and whatever they await.
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Returns the loop running on this thread (inside Run or BlockOn), or null.
  static EventLoop* Current() noexcept;

  // Runs until Stop() is called; then returns, keeping unfinished work.
  void Run();
  // Makes Run() return soon. Thread-safe.
  void Stop() noexcept;
  // Runs the loop until `task` completes and returns its value (or rethrows
  // its exception). Stop() does not end BlockOn. Neither Run nor BlockOn may
  // be called from inside the same loop (a coroutine or callback it runs):
  // the process aborts with a message. Another loop's BlockOn is fine.
  template <typename T>
  T BlockOn(Task<T> task);
  // Starts `task` on this loop (on its next pass, not inline); the loop owns it until
  // it completes. An exception escaping it terminates the process, as with
  // std::thread. Call on the loop's thread, or through Post().
  void SpawnDetached(Task<void> task);
  // Runs `fn` on the loop's thread, from the loop. Thread-safe.
  void Post(absl::AnyInvocable<void() &&> fn);

  // Returns how many detached tasks are still running.
  size_t DetachedCount() const { return detached_.size(); }

 private:
  // The machinery conet's awaitables use, reached through
  // internal::LoopAccess (below), not by applications.
  friend class internal::LoopAccess;

  // Registers `fd` for both directions; returns its generation (the key that
  // makes stale events for a reused descriptor number harmless). The
  // descriptor joins the epoll set only when an operation first has to wait
  // on it (Watch, called by the awaiter): one that never waits costs no epoll_ctl and no kernel
  // wake-up callbacks. Adding it then is race-free: epoll reports a
  // descriptor that is already ready when it is added.
  absl::StatusOr<uint32_t> Register(int fd);
  // Forgets `fd`: pending operations on it complete with CancelledError.
  void Unregister(int fd, uint32_t generation) noexcept;
  // Returns the slot to wait in; null if the generation is stale or the
  // descriptor is not in the epoll set yet (see Watch).
  internal::IoOperation** WaitSlot(int fd, uint32_t generation, bool for_write) {
    IoSlot* slot = LiveSlot(fd, generation);
    if (slot == nullptr || !slot->watched) return nullptr;
    return for_write ? &slot->writer : &slot->reader;
  }
  // Adds a registered descriptor to the epoll set, before its first wait;
  // fails with epoll's error. A stale generation is left alone (OK).
  absl::Status Watch(int fd, uint32_t generation);
  // Returns the reader (`for_write` false) or writer slot of a registration,
  // or null if the generation is stale.
  internal::IoOperation** Slot(int fd, uint32_t generation, bool for_write) {
    IoSlot* slot = LiveSlot(fd, generation);
    if (slot == nullptr) return nullptr;
    return for_write ? &slot->writer : &slot->reader;
  }

  // Read hints. A registration marked ShortReadDrains (TCP: a read that
  // returns fewer bytes than asked has emptied the receive queue) lets a
  // read skip its first attempt after a short read, waiting for the next
  // edge instead of trying and failing with EAGAIN. Any readable event
  // clears the hint; hang-up, error and urgent data turn it off for good.
  // It relies on the kernel never cutting such a read short while bytes
  // remain (and, like all edge-triggered waiting, never returning EAGAIN
  // while data is queued): an interposer that does (a fault-injection shim)
  // leaves the rest waiting for the next edge.
  void SetShortReadDrains(int fd, uint32_t generation) {
    if (IoSlot* slot = LiveSlot(fd, generation)) slot->short_read_drains = true;
  }
  // Whether a read on the registration is known to fail with EAGAIN now.
  bool KnownDrained(int fd, uint32_t generation) const {
    const IoSlot* slot = LiveSlot(fd, generation);
    return slot != nullptr && slot->drained;
  }
  // Records a read that returned fewer bytes than asked (but more than 0).
  void NoteShortRead(int fd, uint32_t generation) {
    IoSlot* slot = LiveSlot(fd, generation);
    if (slot != nullptr && slot->short_read_drains && !slot->read_hangup) {
      slot->drained = true;
    }
  }
  // Queues `node->handle` to be resumed from the loop; the node lives in the
  // waiting object, which unschedules it if it is destroyed first.
  void Schedule(internal::ReadyNode* node) { ready_.PushBack(node); }
  void Unschedule(internal::ReadyNode* node) { ready_.Remove(node); }
  internal::TimerHeap& timers() { return timers_; }
  // Asks the loop's thread to cancel `op`; called from other threads.
  void CancelRemotely(internal::Operation* op);
  // Drops `op` from the cross-thread cancel queue if it is there.
  void ForgetRemoteCancel(internal::Operation* op);
  // Takes a completed detached frame out of the registry.
  void ForgetDetached(std::coroutine_handle<> frame, uint32_t index) noexcept;

  struct IoSlot {
    internal::IoOperation* reader = nullptr;
    internal::IoOperation* writer = nullptr;
    // Odd while registered; bumped on Register and on Unregister, so a
    // stale tag (an event fetched before the fd was closed and reused)
    // never matches.
    uint32_t generation = 0;
    bool short_read_drains = false;  // see SetShortReadDrains
    bool drained = false;            // a short read since the last event
    bool read_hangup = false;        // hang-up, error or urgent data seen
    bool watched = false;            // in the epoll set
    bool registered() const { return (generation & 1) != 0; }
  };
  IoSlot* LiveSlot(int fd, uint32_t generation) {
    if (static_cast<size_t>(fd) >= slot_count_) return nullptr;  // also fd < 0
    IoSlot& slot = slots_[fd];
    // Only a registered slot has the (odd) generation of a live tag.
    return slot.generation == generation ? &slot : nullptr;
  }
  const IoSlot* LiveSlot(int fd, uint32_t generation) const {
    return const_cast<EventLoop*>(this)->LiveSlot(fd, generation);
  }
  EventLoop(internal::Poller poller, UniqueFd wake_fd);
  void GrowSlots(size_t at_least);
  void RunOnce();
  // Runs passes until `*done` (set by a task the loop runs) is true.
  void RunUntilDone(const bool* done);
  void RunReady();
  void StartDetached();
  void FireTimers();
  void Dispatch(const internal::PollEvent& event);
  void DrainWakeFd() noexcept;
  // Retries the operation waiting in `slot` and resumes it if it finished.
  void CompleteIfDone(internal::IoOperation** slot);
  void DrainRemote();
  void WakeUp() noexcept;
  template <typename T>
  static Task<void> SignalWhenDone(Task<T>* task, bool* done);

  internal::Poller poller_;
  UniqueFd wake_fd_;
  // Indexed by descriptor; a bare array and its length rather than a
  // vector, so that the hot lookups compare against a count (no division).
  std::unique_ptr<IoSlot[]> slots_;
  size_t slot_count_ = 0;
  internal::TimerHeap timers_;
  internal::IntrusiveList ready_;
  // Every detached frame still running; each promise knows its index.
  std::vector<std::coroutine_handle<internal::Promise<void>>> detached_;
  // Detached frames not yet started (StartDetached runs them on the next pass).
  std::vector<std::coroutine_handle<>> starting_;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> wake_pending_{false};
  // Set (under remote_mu_) when posted_ or remote_cancels_ gained an entry.
  std::atomic<bool> remote_work_{false};

  // std::mutex rather than absl::Mutex: the system Abseil is not built with
  // ThreadSanitizer, which then cannot see absl::Mutex as a lock.
  std::mutex remote_mu_;
  std::vector<absl::AnyInvocable<void() &&>> posted_ ABSL_GUARDED_BY(remote_mu_);
  std::vector<internal::Operation*> remote_cancels_ ABSL_GUARDED_BY(remote_mu_);
};

// Implementation details follow.

namespace internal {

// The loop's machinery for conet's own awaitables and combinators (fd
// registration and wait slots, read hints, the ready queue, timers,
// cross-thread cancellation, detached frames); see the private members of
// EventLoop for what each does. Not for applications.
class LoopAccess {
 public:
  static absl::StatusOr<uint32_t> Register(EventLoop& loop, int fd) { return loop.Register(fd); }
  static void Unregister(EventLoop& loop, int fd, uint32_t generation) noexcept {
    loop.Unregister(fd, generation);
  }
  static IoOperation** WaitSlot(EventLoop& loop, int fd, uint32_t generation, bool for_write) {
    return loop.WaitSlot(fd, generation, for_write);
  }
  static absl::Status Watch(EventLoop& loop, int fd, uint32_t generation) {
    return loop.Watch(fd, generation);
  }
  static IoOperation** Slot(EventLoop& loop, int fd, uint32_t generation, bool for_write) {
    return loop.Slot(fd, generation, for_write);
  }
  static void SetShortReadDrains(EventLoop& loop, int fd, uint32_t generation) {
    loop.SetShortReadDrains(fd, generation);
  }
  static bool KnownDrained(const EventLoop& loop, int fd, uint32_t generation) {
    return loop.KnownDrained(fd, generation);
  }
  static void NoteShortRead(EventLoop& loop, int fd, uint32_t generation) {
    loop.NoteShortRead(fd, generation);
  }
  static void Schedule(EventLoop& loop, ReadyNode* node) { loop.Schedule(node); }
  static void Unschedule(EventLoop& loop, ReadyNode* node) { loop.Unschedule(node); }
  static TimerHeap& Timers(EventLoop& loop) { return loop.timers(); }
  static void CancelRemotely(EventLoop& loop, Operation* op) { loop.CancelRemotely(op); }
  static void ForgetRemoteCancel(EventLoop& loop, Operation* op) { loop.ForgetRemoteCancel(op); }
  static void ForgetDetached(EventLoop& loop, std::coroutine_handle<> frame,
                             uint32_t index) noexcept {
    loop.ForgetDetached(frame, index);
  }
};

// Returns the loop running on this thread, or FailedPreconditionError
// "<what>: no EventLoop is running on this thread".
absl::StatusOr<EventLoop*> CurrentLoop(absl::string_view what);
// Returns `loop` if not null, else CurrentLoop(what): the rule of every
// conet call that takes an optional `EventLoop* loop`.
absl::StatusOr<EventLoop*> LoopOrCurrent(EventLoop* loop, absl::string_view what);

// In debug builds (no NDEBUG), aborts with a message naming `fd` if `loop`
// has been destroyed: a socket closed after its loop. A no-op otherwise.
void CheckLoopAlive(const EventLoop* loop, int fd) noexcept;

// Sets the thread's current loop for a scope (Run, BlockOn).
class CurrentLoopScope {
 public:
  explicit CurrentLoopScope(EventLoop* loop);
  ~CurrentLoopScope();

 private:
  EventLoop* previous_;
};

}  // namespace internal

template <typename T>
Task<void> EventLoop::SignalWhenDone(Task<T>* task, bool* done) {
  // Awaits completion without taking the result: BlockOn takes it.
  struct AwaitCompletion {
    Task<T>* task;
    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> me) noexcept {
      task->handle().promise().set_continuation(me);
      return task->handle();
    }
    void await_resume() const noexcept {}
  };
  co_await AwaitCompletion{task};
  *done = true;
}

template <typename T>
T EventLoop::BlockOn(Task<T> task) {
  internal::CurrentLoopScope scope(this);
  bool done = false;
  Task<void> signal = SignalWhenDone(&task, &done);
  internal::ReadyNode start;
  start.handle = signal.handle();
  Schedule(&start);
  RunUntilDone(&done);
  return task.handle().promise().TakeResult();
}

}  // namespace conet

#endif  // CONET_NET_EVENT_LOOP_H_
