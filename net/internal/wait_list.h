// File: net/internal/wait_list.h
//
// Waiter and WaitList: the wait queue behind conet's synchronisation
// primitives (net/sync.h, net/bounded_queue.h). A primitive keeps its state
// and its WaitLists under one std::mutex of its own; whoever changes the
// state (on any thread, with or without a loop) takes waiters out in FIFO
// order and grants them what they waited for: a permit, a lock, room, a
// value, or news (an event was set, a queue closed).
//
// A grant is made under the primitive's mutex and delivered on the waiter's
// own loop thread: at once (through the ready queue) when the granter runs
// on that loop, else with EventLoop::Post. Between the two the waiter may be
// cancelled, time out or have its frame destroyed; it then gives an unused
// grant back (GiveBack, under the mutex), so that it passes on to the next
// waiter or back into the primitive. Nothing granted is lost.
//
// A concrete awaiter derives from Waiter, calls Wait() from await_suspend
// with the primitive's mutex held, claims a delivered grant in
// await_resume (MarkClaimed) and calls Retire() from its destructor.
#ifndef CONET_NET_INTERNAL_WAIT_LIST_H_
#define CONET_NET_INTERNAL_WAIT_LIST_H_

#include <coroutine>
#include <memory>
#include <mutex>

#include "absl/status/status.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/intrusive_list.h"
#include "net/internal/operation.h"

namespace conet::internal {

class WaitList;

class Waiter : public Operation, public ListNode {
 public:
  Waiter(Waiter&&) = default;

  // Completes at once, with the error, if a stop was requested or the
  // deadline passed before the wait began.
  bool await_ready() noexcept {
    status() = StopStatus();
    return !status().ok();
  }

  // The granter's side, with the primitive's mutex held and the waiter out
  // of its list: wakes it on its own loop with `grant` (OK: it got what it
  // waited for; an error: why it never will).
  void Grant(const absl::Status& grant);

 protected:
  // `mu` is the primitive's mutex. `owns_grant`: a grant is something the
  // waiter must give back when it does not claim it (a permit, a slot), not
  // news that nobody consumes (an event).
  Waiter(std::mutex& mu, bool owns_grant, const Cancellation& cancel)
      : Operation(cancel), mu_(&mu), owns_grant_(owns_grant) {}
  ~Waiter() = default;

  // Joins `list` and suspends on the current loop, unlocking `lock` (the
  // primitive's mutex) first. Returns false, with the status set, when no
  // loop runs on this thread ("<what>: no EventLoop is running...").
  bool Wait(std::unique_lock<std::mutex>& lock, WaitList& list, const char* what,
            std::coroutine_handle<> handle);
  // Whether the waiter was woken by an OK grant, which await_resume claims.
  bool granted() const { return delivered_ && grant_.ok(); }
  // Records that await_resume has taken what was granted.
  void MarkClaimed() { claimed_ = true; }
  // Ends the wait for good: call from the concrete awaiter's destructor.
  void Retire() noexcept;
  // Returns an OK grant that will not be claimed, the primitive's mutex
  // held. Only for waiters that own their grants.
  virtual void GiveBack() noexcept {}

 private:
  // Shared with a posted delivery, which finds the waiter through it (or
  // nobody, once the waiter stopped waiting). Used on the waiter's thread.
  struct Link {
    explicit Link(Waiter* w) : waiter(w) {}
    Waiter* waiter;
  };
  // On the waiter's thread: wakes it with its grant.
  void Deliver(bool resume_now);
  void Unlink() noexcept final;

  std::mutex* mu_;
  // Under *mu_ until granted_, then the waiter's thread's alone.
  WaitList* list_ = nullptr;
  EventLoop* home_ = nullptr;
  std::shared_ptr<Link> link_;  // set when the grant is posted
  absl::Status grant_;
  bool granted_ = false;  // taken out of the list with a grant
  // The waiter's thread's.
  bool delivered_ = false;
  bool claimed_ = false;
  const bool owns_grant_;
};

// The waiters of one primitive, in FIFO order; used with its mutex held.
class WaitList {
 public:
  WaitList() = default;
  // Aborts with a message if a task still waits: the primitive must outlive
  // every wait on it.
  ~WaitList();
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;

  bool Empty() const { return list_.Empty(); }
  void Add(Waiter* waiter) { list_.PushBack(waiter); }
  void Remove(Waiter* waiter) { list_.Remove(waiter); }
  // Takes the first waiter out and grants it `grant` (see Waiter::Grant).
  void WakeFront(const absl::Status& grant) {
    static_cast<Waiter*>(list_.PopFront())->Grant(grant);
  }
  // Grants every waiter `grant`.
  void WakeAll(const absl::Status& grant) {
    while (!list_.Empty()) WakeFront(grant);
  }

 private:
  IntrusiveList list_;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_WAIT_LIST_H_
