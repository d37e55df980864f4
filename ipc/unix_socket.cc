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
  return Adopt(std::move(*raw), **loop);
}

absl::StatusOr<UnixSocket> UnixSocket::Adopt(UniqueFd fd, EventLoop& loop) {
  absl::StatusOr<int> type = sockets::GetIntOption(fd.fd(), SOL_SOCKET, SO_TYPE, "SO_TYPE");
  if (!type.ok()) return type.status();
  if (absl::Status s = sockets::SetNonBlocking(fd.fd(), true); !s.ok()) return s;
  absl::StatusOr<AsyncFd> async = AsyncFd::Create(std::move(fd), loop);
  if (!async.ok()) return async.status();
  return UnixSocket(std::move(*async), static_cast<SocketType>(*type));
}

absl::StatusOr<UnixSocket> UnixSocket::Adopt(UniqueFd fd) {
  absl::StatusOr<EventLoop*> loop = conet::internal::CurrentLoop("UnixSocket::Adopt");
  if (!loop.ok()) return loop.status();
  return Adopt(std::move(fd), **loop);
}

UnixSocket::SendAwaiter UnixSocket::SendMessage(ConstBytes bytes, std::span<const int> fds,
                                                std::optional<SocketAddress> to,
                                                const Cancellation& cancel) {
  internal::AttachFdsCall call{fd_.fd(), bytes.data(),  bytes.size(),
                               fds,      std::move(to), type_ == SocketType::kStream};
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
                              std::min(max_fds, kMaxFdsPerMessage), type_ != SocketType::kStream,
                              type_ == SocketType::kDatagram},
      cancel);
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

absl::StatusOr<std::pair<UnixSocket, UnixSocket>> SocketPair(SocketType type, EventLoop& loop) {
  absl::StatusOr<std::pair<UniqueFd, UniqueFd>> fds = SocketPairFds(type);
  if (!fds.ok()) return fds.status();
  absl::StatusOr<UnixSocket> first = UnixSocket::Adopt(std::move(fds->first), loop);
  if (!first.ok()) return first.status();
  absl::StatusOr<UnixSocket> second = UnixSocket::Adopt(std::move(fds->second), loop);
  if (!second.ok()) return second.status();
  return std::make_pair(std::move(*first), std::move(*second));
}

absl::StatusOr<std::pair<UnixSocket, UnixSocket>> SocketPair(SocketType type) {
  absl::StatusOr<EventLoop*> loop = conet::internal::CurrentLoop("socketpair");
  if (!loop.ok()) return loop.status();
  return SocketPair(type, **loop);
}

// --- UnixListener ----------------------------------------------------------

absl::StatusOr<UnixListener> UnixListener::Bind(const SocketAddress& address,
                                                UnixListenOptions options, EventLoop& loop) {
  const std::string what = absl::StrCat("listen on ", address.ToString());
  if (absl::Status s = RequireUnix(address, what); !s.ok()) return s;
  if (options.type == SocketType::kDatagram) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": datagram sockets do not listen (use UnixSocket::BindDatagram)"));
  }
  sockets::AcceptorOptions acceptor_options;
  acceptor_options.type = static_cast<int>(options.type);
  acceptor_options.backlog = options.backlog;
  acceptor_options.unix_mode = options.mode;
  absl::StatusOr<sockets::Acceptor> acceptor =
      sockets::Acceptor::Bind(address, acceptor_options, loop);
  if (!acceptor.ok()) return acceptor.status();
  return UnixListener(std::move(*acceptor), std::move(options));
}

absl::StatusOr<UnixListener> UnixListener::Bind(const SocketAddress& address,
                                                UnixListenOptions options) {
  absl::StatusOr<EventLoop*> loop =
      conet::internal::CurrentLoop(absl::StrCat("listen on ", address.ToString()));
  if (!loop.ok()) return loop.status();
  return Bind(address, std::move(options), **loop);
}

absl::StatusOr<UnixListener> UnixListener::Adopt(UniqueFd fd, UnixListenOptions options,
                                                 EventLoop& loop) {
  absl::StatusOr<int> type = sockets::GetIntOption(fd.fd(), SOL_SOCKET, SO_TYPE, "SO_TYPE");
  if (!type.ok()) return type.status();
  options.type = static_cast<SocketType>(*type);
  absl::StatusOr<sockets::Acceptor> acceptor = sockets::Acceptor::Adopt(std::move(fd), loop);
  if (!acceptor.ok()) return acceptor.status();
  return UnixListener(std::move(*acceptor), std::move(options));
}

namespace {

// Reads and drops whatever a refused peer already sent, closing any
// descriptors in it: closing a UNIX socket with unread data makes the
// peer's next receive fail with ECONNRESET, before it reads the refusal.
void DiscardInput(int fd) {
  char buffer[512];
  for (int i = 0; i < 64; ++i) {
    internal::DetachFdsCall call{fd,
                                 buffer,
                                 sizeof(buffer),
                                 kMaxFdsPerMessage,
                                 /*message_based=*/true,
                                 /*want_sender=*/false};
    if (call() <= 0) return;  // drained (EAGAIN), end of stream, or an error
  }                           // `call` closes the descriptors it took
}

}  // namespace

absl::Status UnixListener::CheckPeer(int fd) const {
  if (options_.allowed_uids.empty()) return absl::OkStatus();
  absl::StatusOr<Credentials> peer = PeerCredentials(fd);
  if (!peer.ok()) return peer.status();
  if (std::find(options_.allowed_uids.begin(), options_.allowed_uids.end(), peer->uid) !=
      options_.allowed_uids.end()) {
    return absl::OkStatus();
  }
  if (!options_.refusal.empty()) {
    // Best effort: a fresh connection has room for one short message.
    (void)::send(fd, options_.refusal.data(), options_.refusal.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  DiscardInput(fd);
  return absl::PermissionDeniedError(absl::StrCat("accept on ", address().ToString(),
                                                  ": refused peer pid ", peer->pid, " uid ",
                                                  peer->uid, " (not an allowed uid)"));
}

Task<absl::StatusOr<UnixSocket>> UnixListener::Accept(Cancellation cancel) {
  absl::StatusOr<UniqueFd> conn = co_await acceptor_.Accept(std::move(cancel));
  if (!conn.ok()) co_return conn.status();
  if (absl::Status allowed = CheckPeer(conn->fd()); !allowed.ok()) {
    co_return allowed;  // `conn` closes as it goes out of scope
  }
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(*conn), *acceptor_.loop());
  if (!fd.ok())
    co_return sockets::Annotate(fd.status(), absl::StrCat("accept on ", address().ToString()));
  co_return UnixSocket(std::move(*fd), options_.type);
}

}  // namespace conet::ipc
