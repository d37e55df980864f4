#include "net/internal/wait_list.h"

#include <cstdio>
#include <cstdlib>

#include "absl/status/statusor.h"

namespace conet::internal {

bool Waiter::Wait(std::unique_lock<std::mutex>& lock, WaitList& list, const char* what,
                  std::coroutine_handle<> handle) {
  absl::StatusOr<EventLoop*> loop = CurrentLoop(what);
  if (!loop.ok()) {
    status() = loop.status();
    return false;
  }
  home_ = *loop;
  list_ = &list;
  list.Add(this);
  // A grant from another thread may come as soon as the lock is released;
  // its delivery is posted to this thread, so it runs after Suspend.
  lock.unlock();
  Suspend(**loop, handle);
  return true;
}

void Waiter::Deliver(bool resume_now) {
  delivered_ = true;
  Wake(grant_, resume_now);
}

void Waiter::Unlink() noexcept {
  if (delivered_) return;  // the grant's own wake: out of the list already
  std::lock_guard<std::mutex> lock(*mu_);
  if (!granted_) {
    list_->Remove(this);
    return;
  }
  // Cancelled, timed out or destroyed after a grant was made but before it
  // arrived: the posted delivery finds nobody, and the grant goes back.
  granted_ = false;
  if (link_ != nullptr) link_->waiter = nullptr;
  if (owns_grant_ && grant_.ok()) GiveBack();
}

void Waiter::Retire() noexcept {
  Abandon();
  // Delivered but never resumed: the frame was destroyed in between.
  if (!owns_grant_ || !granted() || claimed_) return;
  std::lock_guard<std::mutex> lock(*mu_);
  GiveBack();
}

WaitList::~WaitList() {
  if (list_.Empty()) return;
  std::fputs(
      "conet: fatal: a synchronisation primitive (AsyncEvent, AsyncMutex, AsyncSemaphore, "
      "BoundedQueue...) was destroyed while a task waits on it\n",
      stderr);
  std::abort();
}

void Waiter::Grant(const absl::Status& grant) {
  granted_ = true;
  grant_ = grant;
  if (home_ == EventLoop::Current()) {
    // Wake only queues the waiter (and its Unlink does not lock): safe
    // under the primitive's mutex.
    Deliver(/*resume_now=*/false);
    return;
  }
  // Posted while the mutex is held: the waiter cannot stop waiting (its
  // Unlink takes the mutex), so its loop is alive.
  link_ = std::make_shared<Link>(this);
  home_->Post([link = link_] {
    if (link->waiter != nullptr) link->waiter->Deliver(/*resume_now=*/true);
  });
}

}  // namespace conet::internal
