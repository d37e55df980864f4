#include "net/when_any.h"

#include "net/event_loop.h"

conet::Task<int> Value(int v) { co_return v; }

conet::Task<bool> First() {
  auto first = co_await conet::WhenAny(Value(1), Value(2));
  co_return first.index == 0;
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(First()) ? 0 : 1;
}
