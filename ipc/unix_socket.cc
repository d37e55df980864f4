#include "ipc/unix_socket.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "net/sockets/connector.h"
#include "net/sockets/socket_ops.h"

namespace conet::ipc {
namespace {

absl::Status RequireUnix(const SocketAddress& address, absl::string_view what) {
  if (address.is_unix()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": not a UNIX address (unix:PATH or unix:@NAME)"));
}

absl::Status RequireMessages(SocketType type, absl::string_view what) {
  if (type != SocketType::kStream) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what,
                   ": a UNIX stream is a conet::StreamSocket (UnixSocket carries datagram and "
                   "seqpacket messages)"));
}

}  // namespace

const char* SocketTypeName(SocketType type) {
  switch (type) {
    case SocketType::kStream:
      return "stream";
    case SocketType::kDatagram:
      return "datagram";
    case SocketType::kSeqPacket:
      return "seqpacket";
  }
  return "unknown";
}

// --- UnixSocket ------------------------------------------------------------

Task<absl::StatusOr<UnixSocket>> UnixSocket::Connect(SocketAddress address, SocketType type,
                                                     Cancellation cancel) {
  std::string what = absl::StrCat("connect ", SocketTypeName(type), " to ", address.ToString());
  if (absl::Status s = RequireUnix(address, what); !s.ok()) co_return s;
  if (absl::Status s = RequireMessages(type, what); !s.ok()) co_return s;
  absl::StatusOr<AsyncFd> fd = co_await sockets::ConnectSocket(address, static_cast<int>(type),
                                                               std::move(what), std::move(cancel));
  if (!fd.ok()) co_return fd.status();
  co_return UnixSocket(std::move(*fd), type);
}

absl::StatusOr<UnixSocket> UnixSocket::BindDatagram(const SocketAddress& address, mode_t mode) {
  const std::string what = absl::StrCat("bind datagram to ", address.ToString());
  if (absl::Status s = RequireUnix(address, what); !s.ok()) return s;
  absl::StatusOr<UnixSocket> socket = OpenDatagram();
  if (!socket.ok()) return sockets::Annotate(socket.status(), what);
  absl::StatusOr<sockets::UnixSocketFile> file = sockets::UnixSocketFile::Claim(address);
  if (!file.ok()) return file.status();
  if (absl::Status bound = file->Bind(socket->fd(), address, mode); !bound.ok()) {
    return sockets::Annotate(bound, "datagram");
  }
  socket->file_ = std::move(*file);
  return socket;
}

absl::StatusOr<UnixSocket> UnixSocket::OpenDatagram() {
  absl::StatusOr<EventLoop*> loop = conet::internal::CurrentLoop("open datagram socket");
  if (!loop.ok()) return loop.status();
  absl::StatusOr<UniqueFd> raw = sockets::OpenSocket(AF_UNIX, SOCK_DGRAM);
  if (!raw.ok()) return raw.status();
  return Adopt(std::move(*raw), *loop);
}

absl::StatusOr<UnixSocket> UnixSocket::Adopt(UniqueFd fd, EventLoop* loop) {
  const std::string what = absl::StrCat("adopt UNIX socket fd ", fd.fd());
  absl::StatusOr<EventLoop*> target = conet::internal::LoopOrCurrent(loop, what);
  if (!target.ok()) return target.status();
  absl::StatusOr<int> type = sockets::GetIntOption(fd.fd(), SOL_SOCKET, SO_TYPE, "SO_TYPE");
  if (!type.ok()) return type.status();
  if (absl::Status s = RequireMessages(static_cast<SocketType>(*type), what); !s.ok()) return s;
  if (absl::Status s = sockets::SetNonBlocking(fd.fd(), true); !s.ok()) return s;
  absl::StatusOr<AsyncFd> async = AsyncFd::Create(std::move(fd), *target);
  if (!async.ok()) return async.status();
  return UnixSocket(std::move(*async), static_cast<SocketType>(*type));
}

UnixSocket::SendAwaiter UnixSocket::SendMessage(ConstBytes bytes, std::span<const int> fds,
                                                std::optional<SocketAddress> to,
                                                const Cancellation& cancel) {
  internal::AttachFdsCall call{fd_.fd(), bytes.data(),  bytes.size(),
                               fds,      std::move(to), /*whole=*/false};
  // Refused before any syscall: the call then fails without one.
  call.invalid = CheckSendFds(bytes.size(), fds.size());
  return fd_.Perform(Direction::kWrite, "sendmsg", std::move(call), cancel);
}

UnixSocket::SendAwaiter UnixSocket::SendFds(ConstBytes bytes, std::span<const int> fds,
                                            const Cancellation& cancel) {
  return SendMessage(bytes, fds, std::nullopt, cancel);
}

UnixSocket::SendAwaiter UnixSocket::Send(ConstBytes bytes, const Cancellation& cancel) {
  return SendMessage(bytes, {}, std::nullopt, cancel);
}

UnixSocket::SendAwaiter UnixSocket::SendTo(ConstBytes bytes, std::span<const int> fds,
                                           const SocketAddress& to, const Cancellation& cancel) {
  return SendMessage(bytes, fds, to, cancel);
}

UnixSocket::ReceiveAwaiter UnixSocket::ReceiveFds(std::span<char> buffer, size_t max_fds,
                                                  const Cancellation& cancel) {
  return fd_.Perform(
      Direction::kRead, "recvmsg",
      internal::DetachFdsCall{fd_.fd(), buffer.data(), buffer.size(),
                              std::min(max_fds, kMaxFdsPerMessage), /*message_based=*/true,
                              type_ == SocketType::kDatagram},
      cancel);
}

absl::Status UnixSocket::ReceiveSenderCredentials() {
  const int on = 1;
  if (::setsockopt(fd_.fd(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("SO_PASSCRED on fd ", fd_.fd()));
  }
  return absl::OkStatus();
}

absl::Status UnixSocket::ShutdownWrite() {
  if (::shutdown(fd_.fd(), SHUT_WR) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("shutdown on fd ", fd_.fd()));
  }
  return absl::OkStatus();
}

absl::StatusOr<SocketAddress> UnixSocket::LocalAddress() const {
  return sockets::LocalAddressOf(fd_.fd());
}

absl::StatusOr<SocketAddress> UnixSocket::PeerAddress() const {
  return sockets::PeerAddressOf(fd_.fd());
}

// --- SocketPair ------------------------------------------------------------

absl::StatusOr<std::pair<UniqueFd, UniqueFd>> SocketPairFds(SocketType type) {
  int fds[2];
  if (::socketpair(AF_UNIX, static_cast<int>(type) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("socketpair(", SocketTypeName(type), ")"));
  }
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

namespace {

// Registers both ends of a socketpair with `loop` as Sockets.
template <typename Socket>
absl::StatusOr<std::pair<Socket, Socket>> AdoptPair(
    absl::StatusOr<std::pair<UniqueFd, UniqueFd>> fds, EventLoop* loop) {
  if (!fds.ok()) return fds.status();
  absl::StatusOr<Socket> first = Socket::Adopt(std::move(fds->first), loop);
  if (!first.ok()) return first.status();
  absl::StatusOr<Socket> second = Socket::Adopt(std::move(fds->second), loop);
  if (!second.ok()) return second.status();
  return std::make_pair(std::move(*first), std::move(*second));
}

}  // namespace

absl::StatusOr<std::pair<UnixSocket, UnixSocket>> SocketPair(SocketType type, EventLoop* loop) {
  absl::StatusOr<EventLoop*> target = conet::internal::LoopOrCurrent(loop, "socketpair");
  if (!target.ok()) return target.status();
  if (absl::Status s = RequireMessages(type, "socketpair"); !s.ok()) return s;
  return AdoptPair<UnixSocket>(SocketPairFds(type), *target);
}

absl::StatusOr<std::pair<StreamSocket, StreamSocket>> StreamPair(EventLoop* loop) {
  absl::StatusOr<EventLoop*> target = conet::internal::LoopOrCurrent(loop, "socketpair(stream)");
  if (!target.ok()) return target.status();
  return AdoptPair<StreamSocket>(SocketPairFds(SocketType::kStream), *target);
}

// --- SeqPacketListener -------------------------------------------------------

absl::StatusOr<SeqPacketListener> SeqPacketListener::Bind(const SocketAddress& address,
                                                          const ListenOptions& options,
                                                          EventLoop* loop) {
  const std::string what = absl::StrCat("listen on ", address.ToString());
  if (absl::Status s = RequireUnix(address, what); !s.ok()) return s;
  absl::StatusOr<EventLoop*> target = conet::internal::LoopOrCurrent(loop, what);
  if (!target.ok()) return target.status();
  absl::StatusOr<sockets::Acceptor> acceptor =
      sockets::Acceptor::Bind(address, SOCK_SEQPACKET, options, **target);
  if (!acceptor.ok()) return acceptor.status();
  return SeqPacketListener(std::move(*acceptor));
}

absl::StatusOr<SeqPacketListener> SeqPacketListener::Adopt(UniqueFd fd,
                                                           const ListenOptions& options,
                                                           EventLoop* loop) {
  const std::string what = absl::StrCat("adopt listening fd ", fd.fd());
  absl::StatusOr<EventLoop*> target = conet::internal::LoopOrCurrent(loop, what);
  if (!target.ok()) return target.status();
  absl::StatusOr<int> type = sockets::GetIntOption(fd.fd(), SOL_SOCKET, SO_TYPE, "SO_TYPE");
  if (!type.ok()) return type.status();
  if (*type != SOCK_SEQPACKET) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a seqpacket socket (a stream listens with StreamListener)"));
  }
  absl::StatusOr<sockets::Acceptor> acceptor =
      sockets::Acceptor::Adopt(std::move(fd), options, **target);
  if (!acceptor.ok()) return acceptor.status();
  return SeqPacketListener(std::move(*acceptor));
}

Task<absl::StatusOr<UnixSocket>> SeqPacketListener::Accept(Cancellation cancel) {
  absl::StatusOr<UniqueFd> conn = co_await acceptor_.Accept(std::move(cancel));
  if (!conn.ok()) co_return conn.status();
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(*conn), acceptor_.loop());
  if (!fd.ok())
    co_return sockets::Annotate(fd.status(), absl::StrCat("accept on ", address().ToString()));
  co_return UnixSocket(std::move(*fd), SocketType::kSeqPacket);
}

}  // namespace conet::ipc
