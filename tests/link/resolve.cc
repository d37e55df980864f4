#include "net/resolve.h"

#include "net/event_loop.h"

conet::Task<bool> Literal() { co_return (co_await conet::Resolve("127.0.0.1:80")).ok(); }

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Literal()) ? 0 : 1;
}
