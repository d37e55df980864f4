#include "net/server.h"

int main() {
  auto group = conet::LoopGroup::Create(1);
  if (!group.ok()) return 1;
  auto listeners = conet::BindForEachLoop(conet::SocketAddress::Ipv4Loopback(0), **group);
  return listeners.ok() && listeners->size() == 1 &&
                 !conet::IdleCancellation(absl::ZeroDuration()).has_deadline()
             ? 0
             : 1;
}
