#include "ipc/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace conet::ipc {

int OpenBeneathRaw(int root_fd, const char* path) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = -1;
  for (int attempt = 0; attempt < 8; ++attempt) {
    fd = static_cast<int>(::syscall(SYS_openat2, root_fd, path, &how, sizeof(how)));
    if (fd >= 0 || (errno != EINTR && errno != EAGAIN)) break;
  }
  return fd;
}

absl::StatusOr<UniqueFd> OpenBeneath(int root_fd, std::string_view path,
                                     const OpenBeneathOptions& options) {
  const std::string shown =
      absl::StrCat("open \"", absl::CHexEscape(absl::string_view(path.data(), path.size())),
                   "\" beneath fd ", root_fd);
  if (path.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(shown, ": the path holds a NUL byte"));
  }
  const std::string c_path(path);
  UniqueFd file(OpenBeneathRaw(root_fd, c_path.c_str()));
  if (!file.is_open()) {
    if (errno == EXDEV) {
      return absl::PermissionDeniedError(absl::StrCat(shown, ": the path escapes the root"));
    }
    return absl::ErrnoToStatus(errno, shown);
  }
  struct stat info {};
  if (options.regular_file_only && (::fstat(file.fd(), &info) != 0 || !S_ISREG(info.st_mode))) {
    return absl::FailedPreconditionError(absl::StrCat(shown, ": not a regular file"));
  }
  const int flags = ::fcntl(file.fd(), F_GETFL);
  if (flags < 0 || ::fcntl(file.fd(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(shown, ": clearing O_NONBLOCK"));
  }
  return file;
}

}  // namespace conet::ipc
