#include "ipc/fd_kind.h"

#include <fcntl.h>
#include <unistd.h>

int main() {
  const int fd = ::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const bool dir = conet::ipc::DescribeFd(fd) == "dir";
  ::close(fd);
  return dir ? 0 : 1;
}
