#include "net/udp.h"

#include "net/event_loop.h"

conet::Task<bool> Binds() {
  co_return conet::UdpSocket::Bind(conet::SocketAddress::Ipv4Loopback(0)).ok();
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Binds()) ? 0 : 1;
}
