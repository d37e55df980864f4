#include "net/unique_fd.h"

#include <unistd.h>

namespace conet {

void UniqueFd::Reset(int fd) noexcept {
  const int old = std::exchange(fd_, fd);
  // close() releases the descriptor even when it reports EINTR on Linux, so
  // it is never retried (that could close a descriptor another thread got).
  if (old >= 0) ::close(old);
}

}  // namespace conet
