#include "net/stream_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "net/resolve.h"
#include "net/sockets/connector.h"
#include "net/sockets/socket_ops.h"
#include "net/timer.h"

namespace conet {
namespace internal {

ssize_t ReadCall::ReadUnix() {
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const ssize_t n = ::recvmsg(fd, &msg, 0);
  control_cut = n >= 0 && (msg.msg_flags & MSG_CTRUNC) != 0;
  return n;
}

namespace {

// Closes the descriptors an SCM_RIGHTS control message carries.
void CloseReceived(const cmsghdr* c) {
  sockets::ForEachPassedFd(c, [](int fd) { ::close(fd); });
}

}  // namespace

ssize_t ReadExactCall::ReadNotingInq() {
  // Room for exactly one control message with one int: the "bytes left"
  // report, or (UNIX) a message's single descriptor instead. Words rather
  // than a char array, which would cost a stack canary per call.
  uint64_t control[CMSG_SPACE(sizeof(int)) / sizeof(uint64_t)];
  static_assert(sizeof(control) == CMSG_SPACE(sizeof(int)));
  iovec iov{data + done, size - done};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  drained = false;
  if (n <= 0) return n;
  const cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr) return n;
  if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    // A stream read wants bytes only: close what came, as read() would
    // have. The read stopped there, so it says nothing about what is left.
    CloseReceived(c);
    return n;
  }
  // A cut control message: the read stopped at descriptors or credentials.
  if (msg.msg_flags & MSG_CTRUNC) return n;
  const int type = inq_level == IPPROTO_TCP ? TCP_CM_INQ : kScmInq;
  if (c->cmsg_level == inq_level && c->cmsg_type == type) {
    int left;
    std::memcpy(&left, CMSG_DATA(c), sizeof(left));
    drained = left == 0;
  }
  return n;
}

absl::Status ReadExactCall::EndedEarly(size_t got) const {
  return absl::OutOfRangeError(
      absl::StrCat("read on fd ", fd, ": end of stream after ", got, " of ", size, " bytes"));
}

ssize_t ReadvCall::operator()() const { return ::readv(fd, buffers, static_cast<int>(count)); }

ssize_t SendmsgCall::operator()() const {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(buffers);
  msg.msg_iovlen = count;
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

ssize_t SendmsgAllCall::operator()() {
  while (first < pending.size()) {
    msghdr msg{};
    msg.msg_iov = pending.data() + first;
    msg.msg_iovlen = pending.size() - first;
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) return -1;
    total += static_cast<size_t>(n);
    // Drop what was sent: whole iovecs, then a prefix of the next one.
    auto left = static_cast<size_t>(n);
    while (first < pending.size() && left >= pending[first].iov_len) {
      left -= pending[first].iov_len;
      ++first;
    }
    if (left > 0) {
      pending[first].iov_base = static_cast<char*>(pending[first].iov_base) + left;
      pending[first].iov_len -= left;
    }
  }
  return static_cast<ssize_t>(total);
}

StreamKind StreamKindOf(int fd) {
  absl::StatusOr<int> domain = sockets::GetIntOption(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
  absl::StatusOr<int> type = sockets::GetIntOption(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
  if (!domain.ok() || !type.ok() || *type != SOCK_STREAM) return StreamKind::kOther;
  if (*domain == AF_UNIX) return StreamKind::kUnix;
  if (*domain != AF_INET && *domain != AF_INET6) return StreamKind::kOther;
  absl::StatusOr<int> protocol = sockets::GetIntOption(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
  return protocol.ok() && *protocol == IPPROTO_TCP ? StreamKind::kTcp : StreamKind::kOther;
}

}  // namespace internal

// --- StreamSocket -------------------------------------------------------------

// A stream is held in every connection's coroutine frame: its flags must
// not cost it a word.
static_assert(sizeof(StreamSocket) == sizeof(AsyncFd));

Task<absl::StatusOr<StreamSocket>> StreamSocket::Connect(SocketAddress address,
                                                         Cancellation cancel) {
  std::string what = absl::StrCat("connect to ", address.ToString());
  absl::StatusOr<AsyncFd> fd =
      co_await sockets::ConnectSocket(address, SOCK_STREAM, std::move(what), std::move(cancel));
  if (!fd.ok()) co_return fd.status();
  co_return StreamSocket(
      std::move(*fd), address.is_unix() ? internal::StreamKind::kUnix : internal::StreamKind::kTcp);
}

Task<absl::StatusOr<StreamSocket>> StreamSocket::Connect(std::string target, Cancellation cancel) {
  absl::StatusOr<std::vector<SocketAddress>> addresses = co_await Resolve(target, cancel);
  if (!addresses.ok()) co_return addresses.status();
  std::vector<std::string> failures;
  for (const SocketAddress& address : *addresses) {
    absl::StatusOr<StreamSocket> stream = co_await Connect(address, cancel);
    if (stream.ok()) co_return stream;
    if (absl::IsCancelled(stream.status()) || absl::IsDeadlineExceeded(stream.status()) ||
        addresses->size() == 1) {
      co_return stream.status();
    }
    failures.push_back(std::string(stream.status().message()));
  }
  co_return absl::UnavailableError(absl::StrCat(
      "connect to \"", target, "\" failed for every address: ", absl::StrJoin(failures, "; ")));
}

absl::StatusOr<StreamSocket> StreamSocket::Adopt(UniqueFd fd, EventLoop& loop) {
  const internal::StreamKind kind = internal::StreamKindOf(fd.fd());
  return Adopt(std::move(fd), loop, kind);
}

absl::StatusOr<StreamSocket> StreamSocket::Adopt(UniqueFd fd, EventLoop& loop,
                                                 internal::StreamKind kind) {
  absl::StatusOr<AsyncFd> async = AsyncFd::Create(std::move(fd), loop);
  if (!async.ok()) return async.status();
  return StreamSocket(std::move(*async), kind);
}

void StreamSocket::EnableInq() {
  inq_tried_ = true;
  const int on = 1;
  if (kind_ == internal::StreamKind::kTcp) {
    inq_enabled_ = ::setsockopt(fd_.fd(), IPPROTO_TCP, TCP_INQ, &on, sizeof(on)) == 0;
  } else if (kind_ == internal::StreamKind::kUnix) {
    // Linux >= 6.17; older kernels refuse it and ReadExact reads as before.
    inq_enabled_ = ::setsockopt(fd_.fd(), SOL_SOCKET, internal::kSoInq, &on, sizeof(on)) == 0;
  }
}

StreamSocket::StreamSocket(AsyncFd fd, internal::StreamKind kind)
    : fd_(std::move(fd)), kind_(kind) {
  // On TCP a short read means the receive queue is empty. On a UNIX stream
  // it does too, unless the read stopped at a message that carried
  // descriptors or credentials, which recvmsg reports as a cut control
  // message (ReadCall::control_cut). A record socket or SCTP promises
  // nothing: each read returns one record.
  if (kind != internal::StreamKind::kOther) fd_.SetShortReadDrains();
}

absl::StatusOr<StreamSocket> StreamSocket::Adopt(UniqueFd fd) {
  absl::StatusOr<EventLoop*> loop = internal::CurrentLoop("StreamSocket::Adopt");
  if (!loop.ok()) return loop.status();
  return Adopt(std::move(fd), **loop);
}

StreamSocket::ReadvAwaiter StreamSocket::ReadSomeV(std::span<const iovec> buffers,
                                                   const Cancellation& cancel) {
  return fd_.Perform(Direction::kRead, "readv",
                     internal::ReadvCall{fd_.fd(), buffers.data(), buffers.size()}, cancel);
}

StreamSocket::WritevAwaiter StreamSocket::WriteSomeV(std::span<const iovec> buffers,
                                                     const Cancellation& cancel) {
  return fd_.Perform(Direction::kWrite, "sendmsg",
                     internal::SendmsgCall{fd_.fd(), buffers.data(), buffers.size()}, cancel);
}

StreamSocket::WritevAllAwaiter StreamSocket::WriteAllV(std::span<const iovec> buffers,
                                                       const Cancellation& cancel) {
  return fd_.Perform(
      Direction::kWrite, "sendmsg",
      internal::SendmsgAllCall{fd_.fd(), std::vector<iovec>(buffers.begin(), buffers.end())},
      cancel);
}

absl::Status StreamSocket::ShutdownWrite() {
  if (::shutdown(fd_.fd(), SHUT_WR) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("shutdown on fd ", fd_.fd()));
  }
  return absl::OkStatus();
}

absl::Status StreamSocket::RequireTcp(const char* what) const {
  absl::StatusOr<int> domain = sockets::GetIntOption(fd_.fd(), SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
  if (!domain.ok()) return domain.status();
  if (*domain != AF_INET && *domain != AF_INET6) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " on fd ", fd_.fd(), ": not a TCP socket"));
  }
  return absl::OkStatus();
}

absl::Status StreamSocket::SetNoDelay(bool enable) {
  if (absl::Status tcp = RequireTcp("TCP_NODELAY"); !tcp.ok()) return tcp;
  return sockets::SetIntOption(fd_.fd(), IPPROTO_TCP, TCP_NODELAY, enable, "TCP_NODELAY");
}

absl::Status StreamSocket::SetKeepAlive(bool enable, absl::Duration idle, absl::Duration interval,
                                        int count) {
  if (absl::Status tcp = RequireTcp("SO_KEEPALIVE"); !tcp.ok()) return tcp;
  const int fd = fd_.fd();
  absl::Status status = sockets::SetIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, enable, "SO_KEEPALIVE");
  if (!status.ok() || !enable) return status;
  const auto seconds = [](absl::Duration d) {
    return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
  };
  status = sockets::SetIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, seconds(idle), "TCP_KEEPIDLE");
  if (status.ok()) {
    status =
        sockets::SetIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds(interval), "TCP_KEEPINTVL");
  }
  if (status.ok()) {
    status = sockets::SetIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, count, "TCP_KEEPCNT");
  }
  return status;
}

absl::StatusOr<SocketAddress> StreamSocket::LocalAddress() const {
  return sockets::LocalAddressOf(fd_.fd());
}

absl::StatusOr<SocketAddress> StreamSocket::PeerAddress() const {
  return sockets::PeerAddressOf(fd_.fd());
}

// --- StreamListener -----------------------------------------------------------

absl::StatusOr<StreamListener> StreamListener::Bind(const SocketAddress& address,
                                                    const ListenOptions& options, EventLoop& loop) {
  sockets::AcceptorOptions acceptor_options;
  acceptor_options.type = SOCK_STREAM;
  acceptor_options.reuse_address = options.reuse_address;
  acceptor_options.reuse_port = options.reuse_port;
  acceptor_options.backlog = options.backlog;
  acceptor_options.v6_only = options.v6_only;
  acceptor_options.unix_mode = options.unix_mode;
  absl::StatusOr<sockets::Acceptor> acceptor =
      sockets::Acceptor::Bind(address, acceptor_options, loop);
  if (!acceptor.ok()) return acceptor.status();
  return StreamListener(std::move(*acceptor), address.is_unix() ? internal::StreamKind::kUnix
                                                                : internal::StreamKind::kTcp);
}

absl::StatusOr<StreamListener> StreamListener::Bind(const SocketAddress& address,
                                                    const ListenOptions& options) {
  absl::StatusOr<EventLoop*> loop =
      internal::CurrentLoop(absl::StrCat("listen on ", address.ToString()));
  if (!loop.ok()) return loop.status();
  return Bind(address, options, **loop);
}

absl::StatusOr<StreamListener> StreamListener::Adopt(UniqueFd fd, EventLoop& loop) {
  // Accepted sockets share the listener's domain, type and protocol.
  const internal::StreamKind kind = internal::StreamKindOf(fd.fd());
  absl::StatusOr<sockets::Acceptor> acceptor = sockets::Acceptor::Adopt(std::move(fd), loop);
  if (!acceptor.ok()) return acceptor.status();
  return StreamListener(std::move(*acceptor), kind);
}

Task<absl::StatusOr<StreamSocket>> StreamListener::Accept(Cancellation cancel) {
  absl::StatusOr<UniqueFd> conn = co_await acceptor_.Accept(std::move(cancel));
  if (!conn.ok()) co_return conn.status();
  co_return StreamSocket::Adopt(std::move(*conn), *acceptor_.loop(), kind_);
}

}  // namespace conet
