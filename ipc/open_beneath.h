// File: ipc/open_beneath.h
//
// Opening a file that a less trusted process named, beneath a root directory
// and nowhere else: what fd_broker and file_server's monitor do for the
// peers they serve.
//
//   absl::StatusOr<conet::UniqueFd> file =
//       conet::ipc::OpenBeneath(root.fd(), "docs/index.html", {.regular_file_only = true});
//
// The kernel resolves the path (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_MAGICLINKS): an absolute path, a ".." or a symlink leading out
// of the root, and /proc's magic links are refused however the path is
// spelled, with no race between a check and the open. Files open read-only,
// close-on-exec, never as a controlling terminal, and without blocking: a
// FIFO with no writer cannot stall the caller (O_NONBLOCK is cleared again
// once open, since the open file description goes to a peer).
#ifndef CONET_IPC_OPEN_BENEATH_H_
#define CONET_IPC_OPEN_BENEATH_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "net/unique_fd.h"

namespace conet::ipc {

struct OpenBeneathOptions {
  // Refuse anything but a regular file (a directory, FIFO, socket, device):
  // FailedPreconditionError.
  bool regular_file_only = false;
};

// Opens `path` (relative to `root_fd`, a directory) read-only beneath it.
// Errors name the path (escaped) and why: NotFound for a missing file,
// PermissionDenied for one escaping the root ("path escapes the root") or
// not readable, InvalidArgument for a NUL in the path, FailedPrecondition
// for a kind of file refused; else the errno's status.
absl::StatusOr<UniqueFd> OpenBeneath(int root_fd, std::string_view path,
                                     const OpenBeneathOptions& options = {});

// The system call alone: openat2 beneath `root_fd` with the flags above,
// retrying EINTR and the EAGAIN the kernel returns when a concurrent rename
// made it unsure a ".." stayed beneath. Returns the descriptor (still
// O_NONBLOCK), or -1 with errno set (EXDEV: the path escapes the root).
int OpenBeneathRaw(int root_fd, const char* path);

}  // namespace conet::ipc

#endif  // CONET_IPC_OPEN_BENEATH_H_
