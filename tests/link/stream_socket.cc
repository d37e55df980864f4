#include "net/stream_socket.h"

// The public headers keep the poller's OS API to themselves.
#ifdef EPOLLIN
#error "a public header brought <sys/epoll.h>"
#endif

#include "net/event_loop.h"

conet::Task<bool> Listens() {
  co_return conet::StreamListener::Bind(conet::SocketAddress::Ipv4Loopback(0)).ok();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Listens()) ? 0 : 1;
}
