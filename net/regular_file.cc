#include "net/regular_file.h"

#include <sys/stat.h>

#include <cerrno>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace conet {
namespace {

// Opens an existing file, or creates a new one: an O_CREAT open of a name
// that is a dangling symlink would create the symlink's target, so creation
// is O_EXCL, and a name that appears between the two attempts is opened
// on the next round.
int OpenOrCreate(const std::string& path, const RegularFileOptions& options) {
  // O_NONBLOCK: opening a FIFO or a device must not wait (cleared below).
  const int flags = options.flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
  for (int attempt = 0; attempt < 8; ++attempt) {
    const int fd = ::open(path.c_str(), flags & ~(O_CREAT | O_EXCL));
    if (fd >= 0 || errno != ENOENT || options.create_mode == 0) return fd;
    const int created = ::open(path.c_str(), flags | O_CREAT | O_EXCL, options.create_mode);
    if (created >= 0 || errno != EEXIST) return created;
  }
  errno = EAGAIN;
  return -1;
}

absl::Status CheckRegular(int fd, const std::string& path, const RegularFileOptions& options) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("fstat ", path));
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file; refused"));
  }
  if (st.st_nlink != 1 && !options.allow_hard_links) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": has ", st.st_nlink, " hard links (it may be another file linked there); refused"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<UniqueFd> OpenRegularFile(const std::string& path, RegularFileOptions options) {
  UniqueFd fd(OpenOrCreate(path, options));
  if (!fd.is_open()) {
    if (errno == ELOOP) {
      return absl::PermissionDeniedError(
          absl::StrCat(path, ": is a symbolic link; refusing to follow it"));
    }
    return absl::ErrnoToStatus(errno, absl::StrCat("open ", path));
  }
  if (absl::Status regular = CheckRegular(fd.fd(), path, options); !regular.ok()) {
    return regular;
  }
  if ((options.flags & O_NONBLOCK) == 0 &&
      ::fcntl(fd.fd(), F_SETFL, ::fcntl(fd.fd(), F_GETFL) & ~O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("fcntl F_SETFL ", path));
  }
  return fd;
}

}  // namespace conet
