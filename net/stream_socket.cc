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

absl::StatusOr<StreamSocket> StreamSocket::Adopt(UniqueFd fd, EventLoop* loop) {
  const internal::StreamKind kind = internal::StreamKindOf(fd.fd());
  return Adopt(std::move(fd), loop, kind);
}

absl::StatusOr<StreamSocket> StreamSocket::Adopt(UniqueFd fd, EventLoop* loop,
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
                                                    const ListenOptions& options, EventLoop* loop) {
  absl::StatusOr<EventLoop*> target =
      internal::LoopOrCurrent(loop, absl::StrCat("listen on ", address.ToString()));
  if (!target.ok()) return target.status();
  absl::StatusOr<sockets::Acceptor> acceptor =
      sockets::Acceptor::Bind(address, SOCK_STREAM, options, **target);
  if (!acceptor.ok()) return acceptor.status();
  return StreamListener(std::move(*acceptor), address.is_unix() ? internal::StreamKind::kUnix
                                                                : internal::StreamKind::kTcp);
}

absl::StatusOr<StreamListener> StreamListener::Adopt(UniqueFd fd, const ListenOptions& options,
                                                     EventLoop* loop) {
  absl::StatusOr<EventLoop*> target =
      internal::LoopOrCurrent(loop, absl::StrCat("adopt listening fd ", fd.fd()));
  if (!target.ok()) return target.status();
  // Accepted sockets share the listener's domain, type and protocol.
  const internal::StreamKind kind = internal::StreamKindOf(fd.fd());
  absl::StatusOr<sockets::Acceptor> acceptor =
      sockets::Acceptor::Adopt(std::move(fd), options, **target);
  if (!acceptor.ok()) return acceptor.status();
  return StreamListener(std::move(*acceptor), kind);
}

Task<absl::StatusOr<StreamSocket>> StreamListener::Accept(Cancellation cancel) {
  absl::StatusOr<UniqueFd> conn = co_await acceptor_.Accept(std::move(cancel));
  if (!conn.ok()) co_return conn.status();
  co_return StreamSocket::Adopt(std::move(*conn), acceptor_.loop(), kind_);
}

absl::StatusOr<StreamSocket> StreamListener::TryAccept() {
  absl::StatusOr<UniqueFd> conn = acceptor_.TryAccept();
  if (!conn.ok()) return conn.status();
  return StreamSocket::Adopt(std::move(*conn), acceptor_.loop(), kind_);
}

}  // namespace conet
