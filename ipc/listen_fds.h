// File: ipc/listen_fds.h
//
// systemd socket activation: the service manager binds the sockets, starts
// the program with them already open as descriptors 3, 4, ... and says so
// in three environment variables (see `man sd_listen_fds`):
//
//   LISTEN_PID      the pid the descriptors are meant for (must be ours)
//   LISTEN_FDS      how many there are, starting at SD_LISTEN_FDS_START = 3
//   LISTEN_FDNAMES  optional, colon-separated names (FileDescriptorName=)
//
// ListenFds() reads them once, early in main, and hands the descriptors over
// as owned UniqueFds:
//
//   absl::StatusOr<std::vector<conet::ipc::ListenedFd>> fds =
//       conet::ipc::ListenFds();
//   if (!fds.ok()) return Fail(fds.status());
//   for (conet::ipc::ListenedFd& listened : *fds) {
//     if (listened.name == "control") {
//       auto listener = conet::ipc::SeqPacketListener::Adopt(
//           std::move(listened.fd), options);
//     }
//   }
//   // An empty vector: not socket-activated; bind the sockets yourself.
//
// ValidateListener checks each one is what the program serves before it
// adopts it (a datagram socket handed to a stream server is an error that
// names the descriptor, not a server that never accepts).
//
// getenv/unsetenv are not thread-safe: call it before starting threads.
#ifndef CONET_IPC_LISTEN_FDS_H_
#define CONET_IPC_LISTEN_FDS_H_

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "net/unique_fd.h"

namespace conet::ipc {

// SD_LISTEN_FDS_START: the first descriptor systemd passes.
inline constexpr int kListenFdsStart = 3;
// The most descriptors ListenFds() believes LISTEN_FDS about; a larger count
// is refused as garbage.
inline constexpr int kMaxListenFds = 10000;

// One descriptor passed by the service manager.
struct ListenedFd {
  // The descriptor (3, 4, ...), now owned and close-on-exec.
  UniqueFd fd;
  // Its name from LISTEN_FDNAMES, or "unknown" when no names were given.
  std::string name;
};

// Takes the descriptors systemd passed to this process, in order, marking
// each close-on-exec. Returns an empty vector when LISTEN_PID is absent or
// names another process, or LISTEN_FDS is absent or 0. Returns
// InvalidArgumentError, quoting the value, for a LISTEN_PID or LISTEN_FDS
// that is not a number in range (LISTEN_FDS: 0 to kMaxListenFds), or a
// LISTEN_FDNAMES whose count differs from LISTEN_FDS; an error naming the
// descriptor if one of them is not open. Everything is checked before any
// descriptor is touched: on error none is taken (or closed).
//
// With `unset_environment` (the default) the three variables are removed,
// whatever the outcome, so that child processes do not inherit them and a
// second call finds nothing. Without it, a second call would hand out the
// same descriptors again: take them once.
absl::StatusOr<std::vector<ListenedFd>> ListenFds(bool unset_environment = true);

// The listening sockets a program serves.
struct ListenerKind {
  // SOCK_STREAM or SOCK_SEQPACKET.
  int type = SOCK_STREAM;
  // Only AF_UNIX will do; otherwise AF_INET, AF_INET6 or AF_UNIX.
  bool unix_only = false;
};

// Checks that `fd` (called `name` in the error, if not empty) is a socket
// (fstat), listening (SO_ACCEPTCONN), of `kind`'s type (SO_TYPE) and
// family (SO_DOMAIN), before a program adopts an inherited descriptor.
// Returns FailedPreconditionError naming the descriptor and what is wrong
// ("descriptor 3 (\"web\"): a SOCK_DGRAM socket, expected SOCK_STREAM"), or
// the errno error of the check that failed.
absl::Status ValidateListener(int fd, const ListenerKind& kind, std::string_view name = "");

}  // namespace conet::ipc

#endif  // CONET_IPC_LISTEN_FDS_H_
