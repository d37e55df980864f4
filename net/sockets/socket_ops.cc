#include "net/sockets/socket_ops.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace conet::sockets {
namespace {

using NameCall = int (*)(int, sockaddr*, socklen_t*);

absl::StatusOr<SocketAddress> AddressOf(int fd, NameCall call, const char* what) {
  sockaddr_storage storage{};
  socklen_t len = sizeof(storage);
  auto* addr = reinterpret_cast<sockaddr*>(&storage);
  if (call(fd, addr, &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(what, " on fd ", fd));
  }
  return SocketAddress::FromSockaddr(addr, len);
}

}  // namespace

absl::Status Annotate(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

absl::StatusOr<UniqueFd> OpenSocket(int family, int type) {
  const int fd = ::socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("socket(family ", family, ", type ", type, ")"));
  }
  return UniqueFd(fd);
}

absl::Status SetNonBlocking(int fd, bool non_blocking) {
  const int flags = ::fcntl(fd, F_GETFL);
  const int wanted = non_blocking ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (flags < 0 || (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0)) {
    return absl::ErrnoToStatus(
        errno, absl::StrCat(non_blocking ? "set" : "clear", " O_NONBLOCK on fd ", fd));
  }
  return absl::OkStatus();
}

absl::Status SetIntOption(int fd, int level, int name, int value, absl::string_view what) {
  if (::setsockopt(fd, level, name, &value, sizeof(value)) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("setsockopt ", what, "=", value, " on fd ", fd));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> GetIntOption(int fd, int level, int name, absl::string_view what) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (::getsockopt(fd, level, name, &value, &len) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockopt ", what, " on fd ", fd));
  }
  return value;
}

absl::StatusOr<SocketAddress> LocalAddressOf(int fd) {
  return AddressOf(fd, &::getsockname, "getsockname");
}

absl::StatusOr<SocketAddress> PeerAddressOf(int fd) {
  return AddressOf(fd, &::getpeername, "getpeername");
}

}  // namespace conet::sockets
