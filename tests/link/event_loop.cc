#include "net/event_loop.h"

conet::Task<int> Seven() { co_return 7; }

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Seven()) == 7 ? 0 : 1;
}
