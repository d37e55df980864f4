#include "net/task_group.h"

#include "net/event_loop.h"

conet::Task<absl::Status> Ok() { co_return absl::OkStatus(); }

conet::Task<bool> Joins() {
  conet::TaskGroup group;
  group.Spawn(Ok());
  co_return (co_await group.Join()).ok();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Joins()) ? 0 : 1;
}
