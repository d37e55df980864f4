#include "net/internal/acceptor.h"

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
#include "net/internal/socket_ops.h"
#include "net/timer.h"

namespace conet::internal {
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

absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

std::string UnixPathOf(const SocketAddress& address) {
  const auto* un = reinterpret_cast<const sockaddr_un*>(address.data());
  return std::string(un->sun_path);
}

// Reports whether `address` names a UNIX socket file nobody listens on
// (connect is refused).
bool IsStaleSocketFile(const SocketAddress& address) {
  struct stat st;
  if (::lstat(UnixPathOf(address).c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
    return false;
  }
  absl::StatusOr<UniqueFd> probe = OpenSocket(AF_UNIX, SOCK_STREAM);
  if (!probe.ok()) return false;
  // A seqpacket listener refuses a stream connect with EPROTOTYPE: it lives.
  return ::connect(probe->Get(), address.data(), address.size()) != 0 &&
         errno == ECONNREFUSED;
}

// Takes PATH.lock (creating it), returning it locked, or EADDRINUSE if a live
// listener holds it. Retries if the file was replaced while we waited.
absl::StatusOr<UniqueFd> LockSocketPath(const std::string& path) {
  const std::string lock_path = path + ".lock";
  for (int attempt = 0; attempt < 8; ++attempt) {
    UniqueFd lock(::open(lock_path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600));
    if (!lock.Valid()) {
      return ErrnoError(errno, absl::StrCat("open lock file ", lock_path));
    }
    if (::flock(lock.Get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return ErrnoError(EADDRINUSE, absl::StrCat("bind to unix:", path,
                                                   " (a live listener holds ",
                                                   lock_path, ")"));
      }
      return ErrnoError(errno, absl::StrCat("flock ", lock_path));
    }
    // The previous owner may have removed the file between our open and
    // flock; then the lock we hold guards nothing.
    struct stat held, current;
    if (::fstat(lock.Get(), &held) == 0 && ::stat(lock_path.c_str(), &current) == 0 &&
        held.st_dev == current.st_dev && held.st_ino == current.st_ino) {
      return lock;
    }
  }
  return absl::UnavailableError(absl::StrCat("lock file ", lock_path, " keeps changing"));
}

absl::Status SetListenOptions(int fd, const SocketAddress& address,
                              const AcceptorOptions& options) {
  if (!address.is_unix()) {
    if (absl::Status s = SetIntOption(fd, SOL_SOCKET, SO_REUSEADDR,
                                      options.reuse_address, "SO_REUSEADDR");
        !s.ok()) {
      return s;
    }
    if (options.reuse_port) {
      if (absl::Status s = SetIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
          !s.ok()) {
        return s;
      }
    }
  }
  if (address.is_ipv6()) {
    return SetIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only, "IPV6_V6ONLY");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Acceptor> Acceptor::Bind(const SocketAddress& address,
                                        const AcceptorOptions& options,
                                        EventLoop& loop) {
  const std::string where = address.ToString();
  absl::StatusOr<UniqueFd> raw = OpenSocket(address.family(), options.type);
  if (!raw.ok()) return Annotate(raw.status(), absl::StrCat("listen on ", where));
  if (absl::Status s = SetListenOptions(raw->Get(), address, options); !s.ok()) {
    return s;
  }
  const bool is_path = address.is_unix() && !address.is_abstract();
  const std::string path = is_path ? UnixPathOf(address) : "";
  UniqueFd lock;
  if (is_path) {
    absl::StatusOr<UniqueFd> locked = LockSocketPath(path);
    if (!locked.ok()) return locked.status();
    lock = std::move(*locked);
    // No conet listener holds the path; a socket file still there is stale
    // if nobody answers on it (a server not using the lock may).
    if (IsStaleSocketFile(address)) ::unlink(path.c_str());
  }
  if (::bind(raw->Get(), address.data(), address.size()) != 0) {
    const int error = errno;
    if (is_path) ::unlink((path + ".lock").c_str());
    return ErrnoError(error, absl::StrCat("bind to ", where));
  }
  Acceptor acceptor;
  acceptor.owned_path_ = path;
  acceptor.lock_ = std::move(lock);
  // Until listen(2), connecting is refused, so the file's mode can be set
  // here without a window where a wrong mode lets someone in.
  if (is_path && options.unix_mode != 0 && ::chmod(path.c_str(), options.unix_mode) != 0) {
    return ErrnoError(errno, absl::StrCat("chmod ", path));
  }
  if (::listen(raw->Get(), options.backlog) != 0) {
    return ErrnoError(errno, absl::StrCat("listen on ", where));
  }
  absl::StatusOr<SocketAddress> local = LocalAddressOf(raw->Get());
  if (!local.ok()) return local.status();
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(*raw), loop);
  if (!fd.ok()) return fd.status();
  acceptor.fd_ = std::move(*fd);
  acceptor.address_ = *local;
  return acceptor;
}

absl::StatusOr<Acceptor> Acceptor::Adopt(UniqueFd fd, EventLoop& loop) {
  absl::StatusOr<SocketAddress> local = LocalAddressOf(fd.Get());
  if (!local.ok()) return local.status();
  absl::StatusOr<AsyncFd> async = AsyncFd::Create(std::move(fd), loop);
  if (!async.ok()) return async.status();
  Acceptor acceptor;
  acceptor.fd_ = std::move(*async);
  acceptor.address_ = *local;
  return acceptor;
}

Acceptor::Acceptor(Acceptor&& other) noexcept
    : fd_(std::move(other.fd_)),
      address_(other.address_),
      owned_path_(std::exchange(other.owned_path_, {})),
      lock_(std::move(other.lock_)),
      backoff_(other.backoff_),
      resume_at_(other.resume_at_) {}

Acceptor& Acceptor::operator=(Acceptor&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::move(other.fd_);
    address_ = other.address_;
    owned_path_ = std::exchange(other.owned_path_, {});
    lock_ = std::move(other.lock_);
    backoff_ = other.backoff_;
    resume_at_ = other.resume_at_;
  }
  return *this;
}

void Acceptor::Close() noexcept {
  fd_.Close();
  if (!owned_path_.empty()) {
    // Remove the socket file, then the lock file, and only then let the
    // lock go: a newcomer either fails to lock or finds both gone.
    ::unlink(owned_path_.c_str());
    ::unlink((owned_path_ + ".lock").c_str());
    owned_path_.clear();
  }
  lock_.Reset();
}

Task<absl::StatusOr<UniqueFd>> Acceptor::Accept(Cancellation cancel) {
  if (!fd_.Valid()) {
    co_return absl::FailedPreconditionError("accept on a closed listener");
  }
  const std::string what = absl::StrCat("accept on ", address_->ToString());
  if (backoff_ > absl::ZeroDuration()) {
    absl::Status waited = co_await SleepUntil(resume_at_, cancel);
    if (!waited.ok()) co_return Annotate(waited, what);
  }
  absl::StatusOr<size_t> conn = co_await fd_.Perform(
      Direction::kRead, "accept4", AcceptCall{fd_.Get()}, cancel);
  if (!conn.ok()) {
    if (absl::IsResourceExhausted(conn.status())) {
      backoff_ = backoff_ == absl::ZeroDuration()
                     ? kFirstAcceptBackoff
                     : std::min(backoff_ * 2, kMaxAcceptBackoff);
      resume_at_ = absl::Now() + backoff_;
      co_return absl::ResourceExhaustedError(
          absl::StrCat(what, ": ", conn.status().message(), " (pausing accepts for ",
                       absl::FormatDuration(backoff_), ")"));
    }
    co_return Annotate(conn.status(), what);
  }
  backoff_ = absl::ZeroDuration();
  co_return UniqueFd(static_cast<int>(*conn));
}

}  // namespace conet::internal
