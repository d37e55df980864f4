#include "ipc/fd_kind.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace conet::ipc {

std::string DescribeFd(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return "other";
  if (S_ISREG(st.st_mode)) return absl::StrCat("file:", st.st_size);
  if (S_ISDIR(st.st_mode)) return "dir";
  if (S_ISFIFO(st.st_mode)) return "pipe";
  if (S_ISSOCK(st.st_mode)) return "socket";
  return "other";
}

}  // namespace conet::ipc
