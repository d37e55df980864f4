// File: net/sync.h
//
// Synchronisation between tasks, on one loop or across loops on different
// threads (a LoopGroup): an event, a mutex, a counting semaphore and a
// connection cap built on it. None of them blocks a thread: a task that has
// to wait suspends and its loop runs other work. (To hand values from task
// to task, see BoundedQueue in net/bounded_queue.h.)
//
//   conet::AsyncMutex mutex;
//   absl::StatusOr<conet::AsyncMutex::Guard> guard = co_await mutex.Lock();
//   if (!guard.ok()) co_return guard.status();  // cancelled, deadline
//   ...                                         // the guard unlocks
//
//   conet::AsyncEvent ready;
//   absl::Status woke = co_await ready.Wait(conet::Within(absl::Seconds(1)));
//   ready.Set();  // from any thread: every waiter wakes
//
//   conet::ConnectionLimiter limiter(1000);
//   std::optional<conet::ConnectionLimiter::Permit> permit = limiter.TryAcquire();
//   if (!permit) continue;  // over the cap: close the connection
//   group.Spawn(Serve(std::move(stream), *std::move(permit)));
//
// co_await yields OK (or the guard, the permit) once the wait is over,
// CancelledError if a stop was requested first (the Cancellation's token or
// the awaiting task's own token), DeadlineExceededError if the
// Cancellation's deadline came first, or FailedPreconditionError if the
// call had to wait and no EventLoop runs on this thread. A call that need
// not wait completes at once, loop or not.
//
// Concurrency: every call may be made from any thread; a waiter is resumed
// on its own loop's thread. Waiters are served in the order they started to
// wait (FIFO), and a newcomer never overtakes them: Unlock and Release hand
// the lock or permit straight to the first waiter.
//
// Cancellation never loses anything: a lock or permit granted to a waiter
// that is cancelled, times out or has its frame destroyed before it resumes
// passes on to the next waiter (or back). A frame destroyed while it waits
// leaves no registration behind. Each primitive must outlive every wait on
// it (destroying one that a task waits on aborts with a message).
#ifndef CONET_NET_SYNC_H_
#define CONET_NET_SYNC_H_

#include <coroutine>
#include <cstdint>
#include <mutex>
#include <optional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/cancellation.h"
#include "net/internal/wait_list.h"

namespace conet {

namespace internal {
class EventAwaiter;
class PermitWaiter;
class AcquireAwaiter;
template <typename Holder, typename Owner>
class HolderAwaiter;
}  // namespace internal

// An event that tasks wait for: Set wakes every waiter, and until Reset
// every later Wait completes at once.
class AsyncEvent {
 public:
  explicit AsyncEvent(bool set = false) : set_(set) {}

  // Sets the event and wakes every task waiting for it.
  void Set();
  // Clears the event; later waits suspend until the next Set. (Waiters that
  // Set woke already still complete with OK.)
  void Reset();
  // Reports whether the event is set.
  bool IsSet() const;
  // Suspends until the event is set (at once if it is).
  internal::EventAwaiter Wait(const Cancellation& cancel = kNoCancellation);

 private:
  friend class internal::EventAwaiter;
  mutable std::mutex mu_;
  bool set_;
  internal::WaitList waiters_;
};

// A counting semaphore: Acquire takes a permit, waiting while there is
// none; Release puts permits back.
class AsyncSemaphore {
 public:
  // Starts with `permits` permits (at least 0).
  explicit AsyncSemaphore(int64_t permits) : permits_(permits) {}

  // Suspends until a permit is free, and takes it.
  internal::AcquireAwaiter Acquire(const Cancellation& cancel = kNoCancellation);
  // Takes a permit if one is free now; returns whether it did.
  bool TryAcquire();
  // Adds `n` permits (n >= 0), waking as many waiters.
  void Release(int64_t n = 1);
  // Returns how many permits are free now.
  int64_t available() const;

 private:
  friend class internal::PermitWaiter;
  friend class AsyncMutex;
  // Adds `n` permits unless that would make more than `limit`; returns
  // whether it did.
  bool Put(int64_t n, int64_t limit);
  bool TakeLocked();
  void PutLocked(int64_t n);

  mutable std::mutex mu_;
  int64_t permits_;
  internal::WaitList waiters_;
};

// A mutex for tasks: Lock suspends (rather than blocking the thread) while
// another task holds it, and yields a Guard that unlocks when destroyed.
// Lock is not recursive: a task that locks twice waits for itself forever.
class AsyncMutex {
 public:
  class Guard;
  using LockAwaiter = internal::HolderAwaiter<Guard, AsyncMutex>;

  AsyncMutex() = default;

  // Suspends until the mutex is free, then yields a Guard that holds it.
  LockAwaiter Lock(const Cancellation& cancel = kNoCancellation);
  // Locks the mutex if it is free now.
  std::optional<Guard> TryLock();
  // Unlocks the mutex, handing it to the first waiter if there is one.
  // Only for a lock whose Guard was Release()d; the process aborts with a
  // message if the mutex is not locked.
  void Unlock();

 private:
  AsyncSemaphore permit_{1};
};

// Holds an AsyncMutex locked; unlocks it when destroyed (on any thread).
class AsyncMutex::Guard {
 public:
  Guard(Guard&& other) noexcept : mutex_(std::exchange(other.mutex_, nullptr)) {}
  Guard& operator=(Guard&& other) noexcept;
  ~Guard() { Unlock(); }

  // Unlocks the mutex now (a no-op if this guard no longer holds it).
  void Unlock();
  // Gives up the guard and leaves the mutex locked: the caller (or another
  // task) unlocks it with AsyncMutex::Unlock. Returns the mutex.
  AsyncMutex* Release() { return std::exchange(mutex_, nullptr); }

 private:
  friend class AsyncMutex;
  friend LockAwaiter;
  explicit Guard(AsyncMutex* mutex) : mutex_(mutex) {}
  AsyncMutex* mutex_;
};

// Caps how many connections a server serves at once: each connection holds
// a Permit, and the permit's destruction (the connection's end) frees its
// place. Acquire waits for a place, for a server that stops accepting while
// it is full; TryAcquire fails at once, for one that turns the extra away.
class ConnectionLimiter {
 public:
  class Permit;
  using PermitAwaiter = internal::HolderAwaiter<Permit, AsyncSemaphore>;

  // Allows `limit` permits at once (at least 0).
  explicit ConnectionLimiter(int64_t limit) : limit_(limit), places_(limit) {}

  // Returns a permit if fewer than limit() are held, else nothing.
  std::optional<Permit> TryAcquire();
  // Suspends until a permit is free and yields it.
  PermitAwaiter Acquire(const Cancellation& cancel = kNoCancellation);
  // Returns how many permits are held now.
  int64_t in_use() const { return limit_ - places_.available(); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  AsyncSemaphore places_;
};

// One place in a ConnectionLimiter, freed when destroyed (on any thread).
class ConnectionLimiter::Permit {
 public:
  Permit(Permit&& other) noexcept : places_(std::exchange(other.places_, nullptr)) {}
  Permit& operator=(Permit&& other) noexcept;
  ~Permit() {
    if (places_ != nullptr) places_->Release(1);
  }

 private:
  friend class ConnectionLimiter;
  friend PermitAwaiter;
  explicit Permit(AsyncSemaphore* places) : places_(places) {}
  AsyncSemaphore* places_;
};

// Implementation details follow.

namespace internal {

class EventAwaiter final : public Waiter {
 public:
  EventAwaiter(AsyncEvent& event, const Cancellation& cancel)
      : Waiter(event.mu_, /*owns_grant=*/false, cancel), event_(&event) {}
  EventAwaiter(EventAwaiter&&) = default;
  ~EventAwaiter() { Retire(); }

  bool await_suspend(std::coroutine_handle<> handle);
  absl::Status await_resume() {
    MarkClaimed();
    return std::move(status());
  }

 private:
  AsyncEvent* event_;
};

// Waits for a permit of an AsyncSemaphore; what await_resume makes of it is
// the concrete awaiter's.
class PermitWaiter : public Waiter {
 public:
  PermitWaiter(PermitWaiter&&) = default;
  bool await_suspend(std::coroutine_handle<> handle);

 protected:
  PermitWaiter(AsyncSemaphore& semaphore, const char* what, const Cancellation& cancel)
      : Waiter(semaphore.mu_, /*owns_grant=*/true, cancel), semaphore_(&semaphore), what_(what) {}
  ~PermitWaiter() { Retire(); }
  // Takes the permit (or the reason there is none).
  absl::Status Take() {
    MarkClaimed();
    return std::move(status());
  }

 private:
  void GiveBack() noexcept override { semaphore_->PutLocked(1); }

  AsyncSemaphore* semaphore_;
  const char* what_;  // names the call in errors
};

class AcquireAwaiter final : public PermitWaiter {
 public:
  AcquireAwaiter(AsyncSemaphore& semaphore, const Cancellation& cancel)
      : PermitWaiter(semaphore, "AsyncSemaphore::Acquire", cancel) {}
  AcquireAwaiter(AcquireAwaiter&&) = default;
  absl::Status await_resume() { return Take(); }
};

// Waits for a permit and yields it held by a `Holder` (a Guard, a Permit)
// made from `owner`.
template <typename Holder, typename Owner>
class HolderAwaiter final : public PermitWaiter {
 public:
  HolderAwaiter(AsyncSemaphore& semaphore, Owner* owner, const char* what,
                const Cancellation& cancel)
      : PermitWaiter(semaphore, what, cancel), owner_(owner) {}
  HolderAwaiter(HolderAwaiter&&) = default;

  absl::StatusOr<Holder> await_resume() {
    absl::Status taken = Take();
    if (!taken.ok()) return taken;
    return Holder(owner_);
  }

 private:
  Owner* owner_;
};

}  // namespace internal

inline internal::EventAwaiter AsyncEvent::Wait(const Cancellation& cancel) {
  return internal::EventAwaiter(*this, cancel);
}

inline internal::AcquireAwaiter AsyncSemaphore::Acquire(const Cancellation& cancel) {
  return internal::AcquireAwaiter(*this, cancel);
}

inline AsyncMutex::LockAwaiter AsyncMutex::Lock(const Cancellation& cancel) {
  return LockAwaiter(permit_, this, "AsyncMutex::Lock", cancel);
}

inline ConnectionLimiter::PermitAwaiter ConnectionLimiter::Acquire(const Cancellation& cancel) {
  return PermitAwaiter(places_, &places_, "ConnectionLimiter::Acquire", cancel);
}

}  // namespace conet

#endif  // CONET_NET_SYNC_H_
