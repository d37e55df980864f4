// File: net/sockets/socket_ops.h
//
// Small syscall helpers shared by conet's socket classes (net/, ipc/): every
// socket is created close-on-exec and non-blocking, options are set with one
// call, and failures become statuses that name the call, the descriptor and
// the errno text.
#ifndef CONET_NET_SOCKETS_SOCKET_OPS_H_
#define CONET_NET_SOCKETS_SOCKET_OPS_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstring>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"

namespace conet::sockets {

// Returns `status` with its message prefixed: "<what>: <message>".
absl::Status Annotate(const absl::Status& status, absl::string_view what);

// Calls `take(fd)` for each descriptor the SCM_RIGHTS control message
// `cmsg` carries (the kernel installed them: the caller now owns them).
template <typename Take>
void ForEachPassedFd(const cmsghdr* cmsg, Take take) {
  const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
  for (size_t i = 0; i < count; ++i) {
    int fd;
    std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
    take(fd);
  }
}

// Creates a socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0).
absl::StatusOr<UniqueFd> OpenSocket(int family, int type);

// Turns O_NONBLOCK on `fd` on or off (descriptors adopted from elsewhere,
// or handed to a child that expects blocking I/O).
absl::Status SetNonBlocking(int fd, bool non_blocking);

// Sets the int-valued socket option `level`/`name` to `value`; `what` names
// it in the error ("TCP_NODELAY").
absl::Status SetIntOption(int fd, int level, int name, int value, absl::string_view what);
// Reads the int-valued socket option `level`/`name`.
absl::StatusOr<int> GetIntOption(int fd, int level, int name, absl::string_view what);

// Returns the address `fd` is bound to (getsockname).
absl::StatusOr<SocketAddress> LocalAddressOf(int fd);
// Returns the address of `fd`'s peer (getpeername).
absl::StatusOr<SocketAddress> PeerAddressOf(int fd);

}  // namespace conet::sockets

#endif  // CONET_NET_SOCKETS_SOCKET_OPS_H_
