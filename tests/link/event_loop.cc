#include "net/event_loop.h"

// The public headers keep the poller's OS API to themselves.
#ifdef EPOLLIN
#error "a public header brought <sys/epoll.h>"
#endif

conet::Task<int> Seven() { co_return 7; }

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Seven()) == 7 ? 0 : 1;
}
