#include "ipc/open_beneath.h"

#include <fcntl.h>

int main() {
  // "/" beneath "/" is the root itself; ".." beneath it escapes.
  conet::UniqueFd root(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return conet::ipc::OpenBeneath(root.fd(), ".").ok() &&
                 !conet::ipc::OpenBeneath(root.fd(), "..").ok()
             ? 0
             : 1;
}
