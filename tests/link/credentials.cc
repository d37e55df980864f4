#include "ipc/credentials.h"

#include <sys/socket.h>
#include <unistd.h>

int main() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 1;
  const bool ok = conet::ipc::PeerCredentials(pair[0]).ok();
  ::close(pair[0]);
  ::close(pair[1]);
  return ok ? 0 : 1;
}
