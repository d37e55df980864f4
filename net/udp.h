// File: net/udp.h
//
// UdpSocket sends and receives datagrams on an EventLoop, over IPv4 or IPv6.
//
//   absl::StatusOr<conet::UdpSocket> socket =
//       conet::UdpSocket::Bind(*conet::SocketAddress::Parse("127.0.0.1:0"));
//   char buf[1500];
//   absl::StatusOr<conet::Datagram> got = co_await socket->ReceiveFrom(buf);
//   if (got.ok() && !got->truncated) {
//     co_await socket->SendTo(std::span<const char>(buf, got->size), got->from);
//   }
//
// A connected socket (Connect) talks to one peer with Send/Receive, and the
// kernel drops datagrams from anyone else. Datagrams are never split: one
// send is one datagram, one receive takes one; a datagram longer than the
// buffer is cut, and the receive says so (`truncated`, `full_size`). Sends
// use MSG_NOSIGNAL. At most one receive and one send may be pending at once;
// every awaitable takes a Cancellation and obeys the task's stop token.
#ifndef CONET_NET_UDP_H_
#define CONET_NET_UDP_H_

#include <sys/socket.h>

#include <cstddef>
#include <span>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/async_fd.h"
#include "net/bytes.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/udp_calls.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"

namespace conet {

// One received datagram.
struct Datagram {
  // Bytes stored in the buffer.
  size_t size = 0;
  // The datagram's length on the wire; more than `size` when truncated.
  size_t full_size = 0;
  // The datagram did not fit the buffer: its tail is lost.
  bool truncated = false;
  // The sender's address.
  SocketAddress from = SocketAddress::Ipv4(0, 0);
};

class UdpSocket {
 public:
  using SendAwaiter = AsyncFd::PerformAwaiter<internal::SendToCall>;
  using ReceiveAwaiter = AsyncFd::PerformAwaiter<internal::ReceiveFromCall>;

  // Creates a UDP socket bound to `address` (port 0: an ephemeral port),
  // registered with `loop` (null: the current loop). `reuse_port` sets
  // SO_REUSEPORT, so several sockets (one per loop) can share the port.
  static absl::StatusOr<UdpSocket> Bind(const SocketAddress& address, bool reuse_port = false,
                                        EventLoop* loop = nullptr);
  // Creates a UDP socket connected to `peer` (bound to an ephemeral port of
  // the matching family), registered with the current loop.
  static absl::StatusOr<UdpSocket> Connect(const SocketAddress& peer);

  UdpSocket() = default;
  UdpSocket(UdpSocket&&) = default;
  UdpSocket& operator=(UdpSocket&&) = default;

  // Sends `data` as one datagram to `to`. co_await yields data.size(), or
  // the error (EMSGSIZE for a datagram too long). `data` must stay valid
  // until the co_await completes.
  SendAwaiter SendTo(ConstBytes data, const SocketAddress& to,
                     const Cancellation& cancel = kNoCancellation);
  // Sends `data` as one datagram to the connected peer.
  SendAwaiter Send(ConstBytes data, const Cancellation& cancel = kNoCancellation);
  // Receives one datagram into `buffer`. co_await yields its Datagram (size,
  // truncation, sender), or the error; on a connected socket, an earlier
  // datagram refused by the peer surfaces here as ECONNREFUSED. `buffer`
  // must stay valid until the co_await completes.
  ReceiveAwaiter ReceiveFrom(std::span<char> buffer, const Cancellation& cancel = kNoCancellation);

  // Runs a system call of your own on the socket, waiting for readiness in
  // `direction` while it fails with EAGAIN (see AsyncFd::Perform and
  // NonBlockingSyscall in net/async_fd.h); Readable and Writable wait alone.
  template <NonBlockingSyscall Syscall>
  AsyncFd::PerformAwaiter<Syscall> Perform(Direction direction, const char* what, Syscall syscall,
                                           const Cancellation& cancel = kNoCancellation) {
    return fd_.Perform(direction, what, std::move(syscall), cancel);
  }
  AsyncFd::ReadinessAwaiter Readable(const Cancellation& cancel = kNoCancellation) {
    return fd_.Readable(cancel);
  }
  AsyncFd::ReadinessAwaiter Writable(const Cancellation& cancel = kNoCancellation) {
    return fd_.Writable(cancel);
  }

  // Returns the address bound (getsockname).
  absl::StatusOr<SocketAddress> LocalAddress() const;
  [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
  // Closes the socket; pending operations complete with CancelledError.
  void Close() noexcept { fd_.Close(); }

 private:
  explicit UdpSocket(AsyncFd fd) : fd_(std::move(fd)) {}

  AsyncFd fd_;
};

}  // namespace conet

#endif  // CONET_NET_UDP_H_
