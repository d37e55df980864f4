// File: net/internal/unix_socket_file.h
//
// UnixSocketFile is the life cycle of a UNIX socket bound to a path, shared
// by every conet socket that binds one (listeners, datagram sockets):
//
//   - Claim: take the lock file beside it (`PATH.lock`, flock(2)), held
//     while the socket lives. Holding it, a socket file already at PATH is
//     stale if nobody answers a connect probe (a server that does not use
//     the lock may), and is removed; failing to get it means a live conet
//     socket owns the name: EADDRINUSE.
//   - SetMode: the socket file's permission bits (see there for why there
//     is no window with looser ones).
//   - Destruction: the socket file, then the lock file, are removed, and
//     only then the lock let go, so a newcomer either fails to lock or
//     finds both gone.
// Abstract names and unnamed sockets have no file: every step is a no-op.
#ifndef CONET_NET_INTERNAL_UNIX_SOCKET_FILE_H_
#define CONET_NET_INTERNAL_UNIX_SOCKET_FILE_H_

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"

namespace conet::internal {

class UnixSocketFile {
 public:
  // Claims `address`'s path (nothing to claim for other addresses).
  static absl::StatusOr<UnixSocketFile> Claim(const SocketAddress& address);

  UnixSocketFile() = default;
  UnixSocketFile(UnixSocketFile&& other) noexcept;
  UnixSocketFile& operator=(UnixSocketFile&& other) noexcept;
  ~UnixSocketFile() { Remove(); }

  // Records that bind(2) created the socket file, so it is ours to remove.
  void MarkBound() { bound_ = true; }
  // Sets the socket file's mode (0: leave it). Call after bind: for a
  // listener before listen(2), when connecting is still refused; for a
  // datagram socket, whose file the kernel created with at most the bits
  // RestrictBeforeBind allowed.
  absl::Status SetMode(mode_t mode) const;
  // Removes what this claim owns (see above); idempotent.
  void Remove() noexcept;

  // Narrows the mode the kernel gives `fd`'s socket file at bind: the
  // socket inode's mode, less the umask (Linux af_unix), so the file is
  // never created looser than `mode`.
  static absl::Status RestrictBeforeBind(int fd, mode_t mode);

 private:
  std::string path_;  // empty: no file
  UniqueFd lock_;
  bool bound_ = false;
};

// Returns the filesystem path of a UNIX path address ("" otherwise).
std::string UnixPathOf(const SocketAddress& address);

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_UNIX_SOCKET_FILE_H_
