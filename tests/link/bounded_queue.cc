#include "net/bounded_queue.h"

#include "net/event_loop.h"

conet::Task<bool> PassesAValue() {
  conet::BoundedQueue<int> queue(1);
  if (!(co_await queue.Push(7)).ok()) co_return false;
  absl::StatusOr<int> value = co_await queue.Pop();
  co_return value.ok() && *value == 7;
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(PassesAValue()) ? 0 : 1;
}
