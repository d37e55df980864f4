#include "ipc/unix_socket.h"

// The public headers keep the poller's OS API to themselves.
#ifdef EPOLLIN
#error "a public header brought <sys/epoll.h>"
#endif

#include "net/event_loop.h"

conet::Task<bool> Pairs() {
  co_return conet::ipc::SocketPair(conet::ipc::SocketType::kSeqPacket).ok();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Pairs()) ? 0 : 1;
}
