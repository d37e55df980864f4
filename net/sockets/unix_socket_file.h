// File: net/sockets/unix_socket_file.h
//
// UnixSocketFile is the life cycle of a UNIX socket bound to a path, shared
// by every conet socket that binds one (listeners, datagram sockets). The
// directory may be shared with other users (/tmp, /run/user), so no step
// follows a symlink planted at the path or trusts a file it did not make:
//
//   - Claim: take the lock file beside it (`PATH.lock`, flock(2)), held
//     while the socket lives. It is opened without following a symlink and
//     must be a regular file of this process's uid with one link (a fresh
//     one is created with O_EXCL). Holding it, a socket file already at PATH
//     of this uid is stale if nobody answers a connect probe (a server that
//     does not use the lock may), and is removed; failing to get the lock
//     means a live conet socket owns the name: EADDRINUSE.
//   - Bind: narrows the socket inode's mode before bind(2), so the file is
//     never created looser than asked; binds; records which file bind made;
//     then sets the exact mode (bits the umask took away) on that very file,
//     opened O_PATH | O_NOFOLLOW and checked to be our socket, never through
//     the path (chmod(2) would follow a symlink swapped in meanwhile).
//   - Destruction: the socket file, then the lock file, are removed, and
//     only then the lock let go, so a newcomer either fails to lock or
//     finds both gone. Each is removed only if the path still names the
//     file this claim made: after a cleaner removed them and a newer server
//     bound the name, the newer server's files stay.
// Abstract names and unnamed sockets have no file: every step but bind(2)
// itself is a no-op.
#ifndef CONET_NET_SOCKETS_UNIX_SOCKET_FILE_H_
#define CONET_NET_SOCKETS_UNIX_SOCKET_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"

namespace conet::sockets {

// A file's identity, to tell it from another one at the same path later.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
};

class UnixSocketFile {
 public:
  // Claims `address`'s path (nothing to claim for other addresses).
  static absl::StatusOr<UnixSocketFile> Claim(const SocketAddress& address);

  UnixSocketFile() = default;
  UnixSocketFile(UnixSocketFile&& other) noexcept;
  UnixSocketFile& operator=(UnixSocketFile&& other) noexcept;
  ~UnixSocketFile() { Remove(); }

  // Binds socket `fd` to `address` (the claimed one) and gives the socket
  // file exactly `mode` (0: the kernel's default, 0777 less the umask). For
  // a listener, call before listen(2): until then connecting is refused.
  absl::Status Bind(int fd, const SocketAddress& address, mode_t mode);
  // Removes what this claim owns (see above); idempotent.
  void Remove() noexcept;

 private:
  // Sets the exact mode on the socket file `made` (an O_PATH descriptor).
  absl::Status SetMode(int made, mode_t mode) const;

  std::string path_;  // empty: no file
  UniqueFd lock_;
  FileId lock_id_;
  bool bound_ = false;  // bind(2) made the socket file, which is socket_id_
  FileId socket_id_;
};

// Leaves the socket file at `path` (and its lock file) in place when this
// process's claim on it ends: another process took the socket over (an
// upgrade handed it on) and is still answering there. For the rest of the
// process's life; the successor does not remove the files when it stops,
// and the next Claim finds them stale and reclaims them.
void LeaveSocketFile(const std::string& path);

// Returns the filesystem path of a UNIX path address ("" otherwise).
std::string UnixPathOf(const SocketAddress& address);

}  // namespace conet::sockets

#endif  // CONET_NET_SOCKETS_UNIX_SOCKET_FILE_H_
