#include "net/timer.h"

#include "net/event_loop.h"

conet::Task<bool> Sleeps() { co_return (co_await conet::Sleep(absl::Milliseconds(1))).ok(); }

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Sleeps()) ? 0 : 1;
}
