#include "net/udp.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "net/sockets/socket_ops.h"

namespace conet {
namespace internal {

ssize_t ReceiveFromCall::operator()() {
  from_len = sizeof(from);
  // MSG_TRUNC makes recvfrom return the datagram's real length.
  return ::recvfrom(fd, data, size, MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &from_len);
}

absl::StatusOr<Datagram> ReceiveFromCall::Finish(absl::StatusOr<size_t> result) const {
  if (!result.ok()) return result.status();
  absl::StatusOr<SocketAddress> sender =
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&from), from_len);
  if (!sender.ok()) return sender.status();
  Datagram datagram;
  datagram.full_size = *result;
  datagram.size = std::min(*result, size);
  datagram.truncated = *result > size;
  datagram.from = *sender;
  return datagram;
}

}  // namespace internal

absl::StatusOr<UdpSocket> UdpSocket::Bind(const SocketAddress& address, bool reuse_port,
                                          EventLoop* loop) {
  const std::string what = absl::StrCat("bind UDP to ", address.ToString());
  absl::StatusOr<EventLoop*> target = internal::LoopOrCurrent(loop, what);
  if (!target.ok()) return target.status();
  if (address.is_unix()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": UdpSocket takes IPv4 or IPv6 addresses"));
  }
  absl::StatusOr<UniqueFd> raw = sockets::OpenSocket(address.family(), SOCK_DGRAM);
  if (!raw.ok()) return sockets::Annotate(raw.status(), what);
  if (reuse_port) {
    if (absl::Status s =
            sockets::SetIntOption(raw->fd(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
        !s.ok()) {
      return s;
    }
  }
  if (::bind(raw->fd(), address.data(), address.size()) != 0) {
    return absl::ErrnoToStatus(errno, what);
  }
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(*raw), *target);
  if (!fd.ok()) return fd.status();
  return UdpSocket(std::move(*fd));
}

absl::StatusOr<UdpSocket> UdpSocket::Connect(const SocketAddress& peer) {
  const std::string what = absl::StrCat("connect UDP to ", peer.ToString());
  const SocketAddress any =
      peer.is_ipv6() ? *SocketAddress::Parse("[::]:0") : SocketAddress::Ipv4(0, 0);
  absl::StatusOr<UdpSocket> socket = Bind(any);
  if (!socket.ok()) return sockets::Annotate(socket.status(), what);
  if (::connect(socket->fd(), peer.data(), peer.size()) != 0) {
    return absl::ErrnoToStatus(errno, what);
  }
  return socket;
}

UdpSocket::SendAwaiter UdpSocket::SendTo(ConstBytes data, const SocketAddress& to,
                                         const Cancellation& cancel) {
  return fd_.Perform(Direction::kWrite, "sendto",
                     internal::SendToCall{fd_.fd(), data.data(), data.size(), to, false}, cancel);
}

UdpSocket::SendAwaiter UdpSocket::Send(ConstBytes data, const Cancellation& cancel) {
  return fd_.Perform(
      Direction::kWrite, "send",
      internal::SendToCall{fd_.fd(), data.data(), data.size(), SocketAddress::Ipv4(0, 0), true},
      cancel);
}

UdpSocket::ReceiveAwaiter UdpSocket::ReceiveFrom(std::span<char> buffer,
                                                 const Cancellation& cancel) {
  return fd_.Perform(Direction::kRead, "recvfrom",
                     internal::ReceiveFromCall{fd_.fd(), buffer.data(), buffer.size()}, cancel);
}

absl::StatusOr<SocketAddress> UdpSocket::LocalAddress() const {
  return sockets::LocalAddressOf(fd_.fd());
}

}  // namespace conet
