#include "net/sockets/unix_socket_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/regular_file.h"
#include "net/sockets/socket_ops.h"

namespace conet::sockets {

std::string UnixPathOf(const SocketAddress& address) {
  if (!address.is_unix() || address.is_abstract()) return "";
  const auto* un = reinterpret_cast<const sockaddr_un*>(address.data());
  return std::string(un->sun_path);
}

namespace {

// The paths LeaveSocketFile named.
struct LeftFiles {
  std::mutex mutex;
  std::set<std::string> paths;
};

LeftFiles& Left() {
  static auto* left = new LeftFiles;  // never destroyed: claims may end at exit
  return *left;
}

bool IsLeft(const std::string& path) {
  LeftFiles& left = Left();
  std::lock_guard<std::mutex> hold(left.mutex);
  return left.paths.contains(path);
}

FileId IdOf(const struct stat& st) { return FileId{st.st_dev, st.st_ino}; }

// Reports whether `path` (not followed) still names the file `id`.
bool PathNames(const std::string& path, FileId id) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && st.st_dev == id.dev && st.st_ino == id.ino;
}

// Reports whether nobody answers a connect to `address` (refused).
bool NobodyListens(const SocketAddress& address) {
  absl::StatusOr<UniqueFd> probe = OpenSocket(AF_UNIX, SOCK_STREAM);
  if (!probe.ok()) return false;
  // A seqpacket listener refuses a stream connect with EPROTOTYPE: it lives.
  return ::connect(probe->fd(), address.data(), address.size()) != 0 && errno == ECONNREFUSED;
}

// Removes a stale socket file of ours at `address`'s path. Another user's
// socket file is never removed (bind then fails with EADDRINUSE, and this
// says whose file is in the way); anything that is not a socket is left
// for bind to refuse.
absl::Status ReclaimStale(const SocketAddress& address, const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode) || !NobodyListens(address)) {
    return absl::OkStatus();
  }
  if (st.st_uid != ::geteuid()) {
    return absl::ErrnoToStatus(
        EADDRINUSE, absl::StrCat("bind to unix:", path, " (a stale socket file of uid ", st.st_uid,
                                 " is there; not removing another user's file)"));
  }
  ::unlink(path.c_str());
  return absl::OkStatus();
}

// Takes PATH.lock (creating it), returning it locked, or EADDRINUSE if a live
// listener holds it. The lock file is never a symlink's target, and must be
// ours: another user who planted one could hold its lock for ever. Retries
// if the file was replaced while we waited.
absl::StatusOr<UniqueFd> LockSocketPath(const std::string& path, FileId* id) {
  const std::string lock_path = path + ".lock";
  for (int attempt = 0; attempt < 8; ++attempt) {
    absl::StatusOr<UniqueFd> lock =
        OpenRegularFile(lock_path, {.flags = O_RDONLY, .create_mode = 0600});
    if (!lock.ok()) return Annotate(lock.status(), absl::StrCat("lock file for unix:", path));
    struct stat held;
    if (::fstat(lock->fd(), &held) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("fstat lock file ", lock_path));
    }
    if (held.st_uid != ::geteuid()) {
      return absl::PermissionDeniedError(absl::StrCat("lock file ", lock_path, " belongs to uid ",
                                                      held.st_uid, ", not to this process's uid ",
                                                      ::geteuid(), "; refusing it"));
    }
    if (::flock(lock->fd(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return absl::ErrnoToStatus(
            EADDRINUSE,
            absl::StrCat("bind to unix:", path, " (a live listener holds ", lock_path, ")"));
      }
      return absl::ErrnoToStatus(errno, absl::StrCat("flock ", lock_path));
    }
    // The previous owner may have removed the file between our open and
    // flock; then the lock we hold guards nothing.
    if (PathNames(lock_path, IdOf(held))) {
      *id = IdOf(held);
      return lock;
    }
  }
  return absl::UnavailableError(absl::StrCat("lock file ", lock_path, " keeps changing"));
}

}  // namespace

absl::StatusOr<UnixSocketFile> UnixSocketFile::Claim(const SocketAddress& address) {
  UnixSocketFile file;
  const std::string path = UnixPathOf(address);
  if (path.empty()) return file;
  absl::StatusOr<UniqueFd> lock = LockSocketPath(path, &file.lock_id_);
  if (!lock.ok()) return lock.status();
  file.path_ = path;
  file.lock_ = std::move(*lock);
  if (absl::Status reclaimed = ReclaimStale(address, path); !reclaimed.ok()) return reclaimed;
  return file;
}

UnixSocketFile::UnixSocketFile(UnixSocketFile&& other) noexcept
    : path_(std::exchange(other.path_, {})),
      lock_(std::move(other.lock_)),
      lock_id_(other.lock_id_),
      bound_(std::exchange(other.bound_, false)),
      socket_id_(other.socket_id_) {}

UnixSocketFile& UnixSocketFile::operator=(UnixSocketFile&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    lock_ = std::move(other.lock_);
    lock_id_ = other.lock_id_;
    bound_ = std::exchange(other.bound_, false);
    socket_id_ = other.socket_id_;
  }
  return *this;
}

absl::Status UnixSocketFile::Bind(int fd, const SocketAddress& address, mode_t mode) {
  const std::string where = address.ToString();
  // The kernel creates the file with the socket inode's mode less the
  // umask (af_unix), so narrowing the inode first means the file is never
  // looser than `mode`, not even for an instant.
  if (mode != 0 && ::fchmod(fd, mode) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("fchmod socket fd ", fd, " before binding to ", where));
  }
  if (::bind(fd, address.data(), address.size()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind to ", where));
  }
  if (path_.empty()) return absl::OkStatus();
  // What is at the path now: the file bind made, unless someone swapped it
  // already (in a directory they may write). Checked on the file itself.
  UniqueFd made(::open(path_.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st;
  if (!made.is_open() || ::fstat(made.fd(), &st) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("open socket file ", path_, " after bind"));
  }
  if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket file ", path_, " was replaced right after bind; leaving it alone"));
  }
  bound_ = true;
  socket_id_ = IdOf(st);
  if (mode == 0 || (st.st_mode & 07777) == mode) return absl::OkStatus();
  return SetMode(made.fd(), mode);
}

absl::Status UnixSocketFile::SetMode(int made, mode_t mode) const {
  // An O_PATH descriptor takes no fchmod; its /proc link reaches the same
  // inode without another lookup of the path.
  const std::string self = absl::StrCat("/proc/self/fd/", made);
  if (::chmod(self.c_str(), mode) != 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("chmod socket file ", path_, " (through ", self, ")"));
  }
  return absl::OkStatus();
}

void LeaveSocketFile(const std::string& path) {
  LeftFiles& left = Left();
  std::lock_guard<std::mutex> hold(left.mutex);
  left.paths.insert(path);
}

void UnixSocketFile::Remove() noexcept {
  if (path_.empty()) return;
  if (IsLeft(path_)) {
    path_.clear();
    bound_ = false;
    lock_.Reset();
    return;
  }
  // Only the files this claim made, if the path still names them.
  if (bound_ && PathNames(path_, socket_id_)) ::unlink(path_.c_str());
  const std::string lock_path = path_ + ".lock";
  if (lock_.is_open() && PathNames(lock_path, lock_id_)) ::unlink(lock_path.c_str());
  path_.clear();
  bound_ = false;
  lock_.Reset();
}

}  // namespace conet::sockets
