// File: ipc/credentials.h
//
// Who is on the other end of a UNIX socket, as the kernel recorded it when
// the connection was made (or the pair created): SO_PEERCRED gives the
// peer's pid, uid and gid, and, on Linux 6.5 and later, SO_PEERPIDFD a pidfd
// that names the peer process without the pid-reuse race.
//
//   absl::StatusOr<conet::ipc::Credentials> peer = conet::ipc::PeerCredentials(fd);
//   if (peer.ok() && peer->uid != ::getuid()) { /* refuse */ }
#ifndef CONET_IPC_CREDENTIALS_H_
#define CONET_IPC_CREDENTIALS_H_

#include <sys/types.h>

#include "absl/status/statusor.h"
#include "net/unique_fd.h"

namespace conet::ipc {

struct Credentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Returns the credentials of the peer of the connected UNIX socket `fd`.
absl::StatusOr<Credentials> PeerCredentials(int fd);

// Returns a pidfd for the peer process (close-on-exec), UnimplementedError
// if the kernel has no SO_PEERPIDFD (before Linux 6.5). A peer that is gone
// is an error, never a fallback to its pid: FailedPreconditionError if it
// has exited, or the kernel's error (ESRCH) once it was reaped.
absl::StatusOr<UniqueFd> PeerPidFd(int fd);

}  // namespace conet::ipc

#endif  // CONET_IPC_CREDENTIALS_H_
