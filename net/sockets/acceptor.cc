#include "net/sockets/acceptor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "net/sockets/socket_ops.h"
#include "net/sockets/unix_socket_file.h"
#include "net/timer.h"

namespace conet::sockets {
namespace {

constexpr absl::Duration kFirstAcceptBackoff = absl::Milliseconds(5);
constexpr absl::Duration kMaxAcceptBackoff = absl::Milliseconds(200);

// accept4 on `fd`, skipping errors that belong to one aborted connection
// rather than to the listener (see accept(2), "Error handling").
struct AcceptCall {
  int fd;
  ssize_t operator()() const {
    while (true) {
      const int conn = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conn >= 0) return conn;
      switch (errno) {
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
          continue;
        default:
          return -1;
      }
    }
  }
};

absl::Status SetListenOptions(int fd, const SocketAddress& address, const ListenOptions& options) {
  if (!address.is_unix()) {
    if (absl::Status s =
            SetIntOption(fd, SOL_SOCKET, SO_REUSEADDR, options.reuse_address, "SO_REUSEADDR");
        !s.ok()) {
      return s;
    }
    if (options.reuse_port) {
      if (absl::Status s = SetIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); !s.ok()) {
        return s;
      }
    }
  }
  if (address.is_ipv6()) {
    return SetIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only, "IPV6_V6ONLY");
  }
  return absl::OkStatus();
}

// Peers can be admitted by uid only where the kernel names them
// (SO_PEERCRED): on UNIX sockets.
absl::Status CheckAllowedUids(const SocketAddress& address, const ListenOptions& options,
                              absl::string_view what) {
  if (options.allowed_uids.empty() || address.is_unix()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": allowed_uids needs a UNIX address (SO_PEERCRED)"));
}

}  // namespace

absl::StatusOr<Acceptor> Acceptor::Bind(const SocketAddress& address, int type,
                                        const ListenOptions& options, EventLoop& loop) {
  const std::string where = address.ToString();
  if (absl::Status s = CheckAllowedUids(address, options, absl::StrCat("listen on ", where));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<UniqueFd> raw = OpenSocket(address.family(), type);
  if (!raw.ok()) return Annotate(raw.status(), absl::StrCat("listen on ", where));
  if (absl::Status s = SetListenOptions(raw->fd(), address, options); !s.ok()) {
    return Annotate(s, absl::StrCat("listen on ", where));
  }
  // A path is claimed first: lock file taken, a stale socket file removed.
  absl::StatusOr<UnixSocketFile> file = UnixSocketFile::Claim(address);
  if (!file.ok()) return file.status();
  // Until listen(2), connecting is refused, whatever the file's mode.
  if (absl::Status bound = file->Bind(raw->fd(), address, options.unix_mode); !bound.ok()) {
    return bound;
  }
  Acceptor acceptor;
  acceptor.allowed_uids_ = options.allowed_uids;
  acceptor.refusal_ = options.refusal;
  acceptor.file_ = std::move(*file);
  if (::listen(raw->fd(), options.backlog) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("listen on ", where));
  }
  absl::StatusOr<SocketAddress> local = LocalAddressOf(raw->fd());
  if (!local.ok()) return local.status();
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(*raw), &loop);
  if (!fd.ok()) return fd.status();
  acceptor.fd_ = std::move(*fd);
  acceptor.address_ = *local;
  return acceptor;
}

absl::StatusOr<Acceptor> Acceptor::Adopt(UniqueFd fd, const ListenOptions& options,
                                         EventLoop& loop) {
  // Descriptors from systemd are blocking unless the unit says NonBlocking=;
  // a blocking accept4 would stall the loop.
  absl::StatusOr<int> listening = GetIntOption(fd.fd(), SOL_SOCKET, SO_ACCEPTCONN, "SO_ACCEPTCONN");
  if (!listening.ok()) return listening.status();
  if (*listening != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("adopt listener fd ", fd.fd(), ": the socket is not listening"));
  }
  if (absl::Status s = SetNonBlocking(fd.fd(), true); !s.ok()) return s;
  absl::StatusOr<SocketAddress> local = LocalAddressOf(fd.fd());
  if (!local.ok()) return local.status();
  if (absl::Status s =
          CheckAllowedUids(*local, options, absl::StrCat("adopt listener ", local->ToString()));
      !s.ok()) {
    return s;
  }
  absl::StatusOr<AsyncFd> async = AsyncFd::Create(std::move(fd), &loop);
  if (!async.ok()) return async.status();
  Acceptor acceptor;
  acceptor.allowed_uids_ = options.allowed_uids;
  acceptor.refusal_ = options.refusal;
  acceptor.fd_ = std::move(*async);
  acceptor.address_ = *local;
  return acceptor;
}

namespace {

// Reads and drops whatever a refused peer already sent, closing any
// descriptors in it: closing a UNIX socket with unread data makes the
// peer's next receive fail with ECONNRESET, before it reads the refusal.
void DiscardInput(int fd) {
  char buffer[512];
  // Room for a full SCM_RIGHTS message (SCM_MAX_FD, 253 descriptors: the
  // kernel's limit, ipc::kMaxFdsPerMessage) and credentials.
  constexpr size_t kScmMaxFd = 253;
  alignas(cmsghdr) char control[CMSG_SPACE(kScmMaxFd * sizeof(int)) + CMSG_SPACE(sizeof(ucred))];
  for (int i = 0; i < 64; ++i) {
    iovec iov{buffer, sizeof(buffer)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    for (cmsghdr* c = n >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        ForEachPassedFd(c, [](int passed) { ::close(passed); });
      }
    }
    if (n <= 0) return;  // drained (EAGAIN), end of stream, or an error
  }
}

}  // namespace

absl::Status Acceptor::CheckPeer(int fd) const {
  if (allowed_uids_.empty()) return absl::OkStatus();
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("SO_PEERCRED on fd ", fd));
  }
  if (std::find(allowed_uids_.begin(), allowed_uids_.end(), peer.uid) != allowed_uids_.end()) {
    return absl::OkStatus();
  }
  if (!refusal_.empty()) {
    // Best effort: a fresh connection has room for one short message.
    (void)::send(fd, refusal_.data(), refusal_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  DiscardInput(fd);
  return absl::PermissionDeniedError(absl::StrCat("accept on ", address_->ToString(),
                                                  ": refused peer pid ", peer.pid, " uid ",
                                                  peer.uid, " (not an allowed uid)"));
}

void Acceptor::Close() noexcept {
  fd_.Close();
  file_.Remove();
}

Task<absl::StatusOr<UniqueFd>> Acceptor::Accept(Cancellation cancel) {
  if (!fd_.is_open()) {
    co_return absl::FailedPreconditionError("accept on a closed listener");
  }
  // Formatted only on an error: accepting is a hot path.
  auto what = [this] { return absl::StrCat("accept on ", address_->ToString()); };
  if (backoff_ > absl::ZeroDuration()) {
    absl::Status waited = co_await SleepUntil(resume_at_, cancel);
    if (!waited.ok()) co_return Annotate(waited, what());
  }
  const AcceptCall accept_call{fd_.fd()};  // named: see the GCC 12 note in task.h
  absl::StatusOr<size_t> conn =
      co_await fd_.Perform(Direction::kRead, "accept4", accept_call, cancel);
  if (!conn.ok()) {
    if (absl::IsResourceExhausted(conn.status())) {
      backoff_ = backoff_ == absl::ZeroDuration() ? kFirstAcceptBackoff
                                                  : std::min(backoff_ * 2, kMaxAcceptBackoff);
      resume_at_ = absl::Now() + backoff_;
      co_return absl::ResourceExhaustedError(absl::StrCat(what(), ": ", conn.status().message(),
                                                          " (pausing accepts for ",
                                                          absl::FormatDuration(backoff_), ")"));
    }
    co_return Annotate(conn.status(), what());
  }
  backoff_ = absl::ZeroDuration();
  UniqueFd accepted(static_cast<int>(*conn));
  if (absl::Status allowed = CheckPeer(accepted.fd()); !allowed.ok()) {
    co_return allowed;  // `accepted` closes as it goes out of scope
  }
  co_return accepted;
}

absl::StatusOr<UniqueFd> Acceptor::TryAccept() {
  if (!fd_.is_open()) return absl::FailedPreconditionError("accept on a closed listener");
  const ssize_t conn = AcceptCall{fd_.fd()}();
  if (conn < 0) {
    const int error = errno;
    if (error == EAGAIN || error == EWOULDBLOCK) {
      return absl::UnavailableError(
          absl::StrCat("accept on ", address_->ToString(), ": no connection queued"));
    }
    return absl::ErrnoToStatus(error, absl::StrCat("accept on ", address_->ToString()));
  }
  UniqueFd accepted(static_cast<int>(conn));
  if (absl::Status allowed = CheckPeer(accepted.fd()); !allowed.ok()) return allowed;
  return accepted;
}

}  // namespace conet::sockets
