// File: net/regular_file.h
//
// OpenRegularFile opens a regular file by path the way a privileged daemon
// must when the directory may be shared with other users (a log, a lock
// file, a pid file): the last component is never followed if it is a
// symbolic link, nothing but a regular file is accepted (a FIFO or device
// planted there is refused without blocking on it), and by default a file
// with other hard links is refused too, since it may be someone else's file
// linked into place. With `create_mode` set, a missing file is created with
// O_EXCL, which never follows a symlink either.
//
//   absl::StatusOr<conet::UniqueFd> log = conet::OpenRegularFile(
//       "/var/log/app.log", {.flags = O_WRONLY | O_APPEND, .create_mode = 0640});
//   if (!log.ok()) return log.status();  // "log ...: is a symbolic link ..."
//
// Symlinks in the directories above the last component are followed: a
// user who controls one of those directories controls the path anyway.
#ifndef CONET_NET_REGULAR_FILE_H_
#define CONET_NET_REGULAR_FILE_H_

#include <fcntl.h>
#include <sys/types.h>

#include <string>

#include "absl/status/statusor.h"
#include "net/unique_fd.h"

namespace conet {

struct RegularFileOptions {
  // The access mode and flags for open(2): O_RDONLY, O_WRONLY | O_APPEND,
  // ... (O_CLOEXEC, O_NOFOLLOW, O_NOCTTY are always added).
  int flags = O_RDONLY;
  // Creates the file with these permission bits (less the umask) when it is
  // missing; 0: a missing file is NotFoundError.
  mode_t create_mode = 0;
  // Accepts a file that has more than one hard link.
  bool allow_hard_links = false;
};

// Opens the regular file at `path` as described above (a plain blocking
// call, for start-up). Errors name the path: PermissionDenied for a
// symlink, FailedPrecondition for another kind of file or extra hard
// links, and the errno of open(2) otherwise.
absl::StatusOr<UniqueFd> OpenRegularFile(const std::string& path, RegularFileOptions options = {});

}  // namespace conet

#endif  // CONET_NET_REGULAR_FILE_H_
