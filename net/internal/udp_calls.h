// File: net/internal/udp_calls.h
//
// The system calls behind UdpSocket (net/udp.h), as NonBlockingSyscall
// objects for AsyncFd::Perform. Not part of the application API; the
// out-of-line members are defined in //net:udp.
#ifndef CONET_NET_INTERNAL_UDP_CALLS_H_
#define CONET_NET_INTERNAL_UDP_CALLS_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>

#include "absl/status/statusor.h"
#include "net/socket_address.h"

namespace conet {

struct Datagram;  // net/udp.h

namespace internal {

struct SendToCall {
  int fd;
  const char* data;
  size_t size;
  SocketAddress to;
  bool connected;
  ssize_t operator()() const {
    return ::sendto(fd, data, size, MSG_NOSIGNAL, connected ? nullptr : to.data(),
                    connected ? 0 : to.size());
  }
};

struct ReceiveFromCall {
  int fd;
  char* data;
  size_t size;
  sockaddr_storage from{};
  socklen_t from_len = 0;
  ssize_t operator()();
  absl::StatusOr<Datagram> Finish(absl::StatusOr<size_t> result) const;
};

}  // namespace internal
}  // namespace conet

#endif  // CONET_NET_INTERNAL_UDP_CALLS_H_
