#include "net/internal/unix_socket_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/internal/socket_ops.h"

namespace conet::internal {
namespace {

}  // namespace

std::string UnixPathOf(const SocketAddress& address) {
  if (!address.is_unix() || address.is_abstract()) return "";
  const auto* un = reinterpret_cast<const sockaddr_un*>(address.data());
  return std::string(un->sun_path);
}

namespace {

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

}  // namespace

absl::StatusOr<UnixSocketFile> UnixSocketFile::Claim(const SocketAddress& address) {
  UnixSocketFile file;
  file.path_ = UnixPathOf(address);
  if (file.path_.empty()) return file;
  absl::StatusOr<UniqueFd> lock = LockSocketPath(file.path_);
  if (!lock.ok()) {
    file.path_.clear();
    return lock.status();
  }
  file.lock_ = std::move(*lock);
  if (IsStaleSocketFile(address)) ::unlink(file.path_.c_str());
  return file;
}

UnixSocketFile::UnixSocketFile(UnixSocketFile&& other) noexcept
    : path_(std::exchange(other.path_, {})),
      lock_(std::move(other.lock_)),
      bound_(std::exchange(other.bound_, false)) {}

UnixSocketFile& UnixSocketFile::operator=(UnixSocketFile&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    lock_ = std::move(other.lock_);
    bound_ = std::exchange(other.bound_, false);
  }
  return *this;
}

absl::Status UnixSocketFile::SetMode(mode_t mode) const {
  if (path_.empty() || mode == 0) return absl::OkStatus();
  if (::chmod(path_.c_str(), mode) != 0) {
    return ErrnoError(errno, absl::StrCat("chmod ", path_));
  }
  return absl::OkStatus();
}

void UnixSocketFile::Remove() noexcept {
  if (path_.empty()) return;
  // Only a file our bind created is removed; the lock file is always ours.
  if (bound_) ::unlink(path_.c_str());
  ::unlink((path_ + ".lock").c_str());
  path_.clear();
  bound_ = false;
  lock_.Reset();
}

absl::Status UnixSocketFile::RestrictBeforeBind(int fd, mode_t mode) {
  if (mode == 0) return absl::OkStatus();
  if (::fchmod(fd, mode) != 0) {
    return ErrnoError(errno, absl::StrCat("fchmod socket fd ", fd));
  }
  return absl::OkStatus();
}

}  // namespace conet::internal
