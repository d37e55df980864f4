#include "net/sync.h"

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

namespace conet {
namespace {

[[noreturn]] void Fatal(const char* message) {
  std::fprintf(stderr, "conet: fatal: %s\n", message);
  std::abort();
}

}  // namespace

// --- AsyncEvent ------------------------------------------------------------

void AsyncEvent::Set() {
  std::lock_guard<std::mutex> lock(mu_);
  set_ = true;
  waiters_.WakeAll(absl::OkStatus());
}

void AsyncEvent::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  set_ = false;
}

bool AsyncEvent::IsSet() const {
  std::lock_guard<std::mutex> lock(mu_);
  return set_;
}

bool internal::EventAwaiter::await_suspend(std::coroutine_handle<> handle) {
  std::unique_lock<std::mutex> lock(event_->mu_);
  if (event_->set_) return false;
  return Wait(lock, event_->waiters_, "AsyncEvent::Wait", handle);
}

// --- AsyncSemaphore --------------------------------------------------------

bool AsyncSemaphore::TryAcquire() {
  std::lock_guard<std::mutex> lock(mu_);
  return TakeLocked();
}

void AsyncSemaphore::Release(int64_t n) {
  if (n < 0) Fatal("AsyncSemaphore::Release: a negative count of permits");
  Put(n, std::numeric_limits<int64_t>::max());
}

int64_t AsyncSemaphore::available() const {
  std::lock_guard<std::mutex> lock(mu_);
  return permits_;
}

bool AsyncSemaphore::Put(int64_t n, int64_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  if (permits_ > limit - n) return false;
  PutLocked(n);
  return true;
}

bool AsyncSemaphore::TakeLocked() {
  // A free permit means nobody waits: PutLocked hands permits out first.
  if (permits_ <= 0) return false;
  --permits_;
  return true;
}

void AsyncSemaphore::PutLocked(int64_t n) {
  permits_ += n;
  for (; permits_ > 0 && !waiters_.Empty(); --permits_) waiters_.WakeFront(absl::OkStatus());
}

bool internal::PermitWaiter::await_suspend(std::coroutine_handle<> handle) {
  std::unique_lock<std::mutex> lock(semaphore_->mu_);
  if (semaphore_->TakeLocked()) return false;
  return Wait(lock, semaphore_->waiters_, what_, handle);
}

// --- AsyncMutex ------------------------------------------------------------

std::optional<AsyncMutex::Guard> AsyncMutex::TryLock() {
  if (!permit_.TryAcquire()) return std::nullopt;
  return Guard(this);
}

void AsyncMutex::Unlock() {
  if (!permit_.Put(1, /*limit=*/1)) Fatal("AsyncMutex::Unlock: the mutex is not locked");
}

AsyncMutex::Guard& AsyncMutex::Guard::operator=(Guard&& other) noexcept {
  if (this != &other) {
    Unlock();
    mutex_ = std::exchange(other.mutex_, nullptr);
  }
  return *this;
}

void AsyncMutex::Guard::Unlock() {
  if (AsyncMutex* mutex = std::exchange(mutex_, nullptr)) mutex->Unlock();
}

// --- ConnectionLimiter -----------------------------------------------------

std::optional<ConnectionLimiter::Permit> ConnectionLimiter::TryAcquire() {
  if (!places_.TryAcquire()) return std::nullopt;
  return Permit(&places_);
}

ConnectionLimiter::Permit& ConnectionLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (places_ != nullptr) places_->Release(1);
    places_ = std::exchange(other.places_, nullptr);
  }
  return *this;
}

}  // namespace conet
