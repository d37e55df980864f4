#include "net/sync.h"

#include "net/event_loop.h"

conet::Task<bool> Locks() {
  conet::AsyncMutex mutex;
  absl::StatusOr<conet::AsyncMutex::Guard> guard = co_await mutex.Lock();
  co_return guard.ok() && !mutex.TryLock().has_value();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Locks()) ? 0 : 1;
}
