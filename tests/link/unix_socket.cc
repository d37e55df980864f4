#include "ipc/unix_socket.h"

#include "net/event_loop.h"

conet::Task<bool> Pairs() {
  co_return conet::ipc::SocketPair(conet::ipc::SocketType::kSeqPacket).ok();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Pairs()) ? 0 : 1;
}
