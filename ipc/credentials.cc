#include "ipc/credentials.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5; older libc headers lack it
#endif

namespace conet::ipc {

absl::StatusOr<Credentials> PeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("SO_PEERCRED on fd ", fd));
  }
  return Credentials{cred.pid, cred.uid, cred.gid};
}

absl::StatusOr<UniqueFd> PeerPidFd(int fd) {
  int pidfd = -1;
  socklen_t len = sizeof(pidfd);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
    const int error = errno;
    if (error == ENOPROTOOPT) {
      return absl::UnimplementedError(absl::StrCat(
          "SO_PEERPIDFD on fd ", fd, ": this kernel has no peer pidfds (Linux >= 6.5)"));
    }
    return absl::ErrnoToStatus(error, absl::StrCat("SO_PEERPIDFD on fd ", fd));
  }
  UniqueFd owned(pidfd);
  // A pidfd may name a process that has exited (not yet reaped): that is
  // no peer to trust, and its pid may soon be someone else's. Fail closed.
  pollfd exited{owned.fd(), POLLIN, 0};
  const int ready = ::poll(&exited, 1, 0);
  if (ready < 0)
    return absl::ErrnoToStatus(errno, absl::StrCat("poll of the peer's pidfd on fd ", fd));
  if (ready > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("SO_PEERPIDFD on fd ", fd, ": the peer process has exited"));
  }
  return owned;
}

}  // namespace conet::ipc
