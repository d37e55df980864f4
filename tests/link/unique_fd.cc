#include "net/unique_fd.h"

#include <fcntl.h>

int main() {
  conet::UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  return fd.is_open() ? 0 : 1;
}
