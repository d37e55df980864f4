#include "net/async_fd.h"

// The public headers keep the poller's OS API to themselves.
#ifdef EPOLLIN
#error "a public header brought <sys/epoll.h>"
#endif

#include <sys/socket.h>

#include "net/event_loop.h"

conet::Task<bool> Registers() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    co_return false;
  }
  conet::UniqueFd other(pair[1]);
  co_return conet::AsyncFd::Create(conet::UniqueFd(pair[0])).ok();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Registers()) ? 0 : 1;
}
