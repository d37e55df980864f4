#include "net/timeout.h"

#include "net/event_loop.h"

conet::Task<absl::StatusOr<int>> Seven() { co_return 7; }

conet::Task<bool> InTime() {
  absl::StatusOr<int> seven = co_await conet::WithTimeout(Seven(), absl::Seconds(5));
  co_return seven.ok() && *seven == 7;
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(InTime()) ? 0 : 1;
}
