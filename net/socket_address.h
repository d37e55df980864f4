// File: net/socket_address.h
//
// SocketAddress is one endpoint a socket can bind, connect or be accepted
// from: an IPv4 or IPv6 address with a port (IPv6 with its scope id), a UNIX
// socket path, or a Linux abstract UNIX name. It is a small copyable value
// that holds the `sockaddr` the kernel wants, so it can be handed straight to
// bind(2)/connect(2) and built back from what accept4(2), getsockname(2) and
// recvfrom(2) return. Byte order is handled inside: ports and IPv4 addresses
// go in and come out in host order.
//
// Its text form is the one every conet program uses (docs/programs/), and Parse(ToString()) gives
// the same address back:
//
//   127.0.0.1:8080      HOST:PORT, HOST a dotted IPv4 literal
//   [::1]:8080          [IPV6]:PORT, optionally [fe80::1%eth0]:80 or %2
//   unix:/tmp/x.sock    a path in the filesystem (one that begins with '@'
//                       is written unix:./@name, so it does not read as
//                       an abstract name)
//   unix:@name          an abstract name (Linux; no file is created)
//   unix:               the unnamed UNIX address (an unbound socket's)
//
// Host names are not resolved here; PORT 0 asks the kernel for an ephemeral
// port.
//
//   absl::StatusOr<conet::SocketAddress> addr =
//       conet::SocketAddress::Parse("127.0.0.1:0");
//   if (!addr.ok()) return addr.status();
//   ::bind(fd, addr->data(), addr->size());
//
//   sockaddr_storage peer;
//   socklen_t len = sizeof(peer);
//   auto* peer_addr = reinterpret_cast<sockaddr*>(&peer);
//   int conn = ::accept4(fd, peer_addr, &len, SOCK_CLOEXEC);
//   absl::StatusOr<conet::SocketAddress> from =
//       conet::SocketAddress::FromSockaddr(peer_addr, len);
//   std::string text = from->ToString();  // "127.0.0.1:51034"
#ifndef CONET_NET_SOCKET_ADDRESS_H_
#define CONET_NET_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conet {

class SocketAddress {
 public:
  // Bytes a UNIX path or abstract name may have: sun_path (108 bytes) less
  // the path's terminating NUL, or less the abstract name's leading NUL.
  static constexpr size_t kMaxUnixNameBytes = 107;

  // Parses the text form above. Anything else is refused with
  // InvalidArgumentError, whose message quotes `text` and names what is
  // wrong, e.g. `invalid address "1.2.3.4:99999": port 99999 out of range
  // 0-65535`. An IPv6 scope may be a number or an interface name (looked up
  // with if_nametoindex). An abstract name may hold any bytes, NUL included; a
  // path may not hold a NUL.
  [[nodiscard]] static absl::StatusOr<SocketAddress> Parse(absl::string_view text);

  // Returns the IPv4 address `host_order_addr` (e.g. INADDR_ANY) with `port`.
  [[nodiscard]] static SocketAddress Ipv4(uint32_t host_order_addr, uint16_t port);
  // Returns 127.0.0.1 with `port`.
  [[nodiscard]] static SocketAddress Ipv4Loopback(uint16_t port);
  // Returns [::1] with `port`.
  [[nodiscard]] static SocketAddress Ipv6Loopback(uint16_t port);
  // Returns the UNIX address of the filesystem `path`; refuses an empty path,
  // one holding a NUL, or one longer than kMaxUnixNameBytes.
  [[nodiscard]] static absl::StatusOr<SocketAddress> UnixPath(absl::string_view path);
  // Returns the abstract UNIX address `name` (without the leading NUL, any
  // bytes); refuses an empty name or one longer than kMaxUnixNameBytes.
  // Printed raw: escape ToString() before it reaches a log.
  [[nodiscard]] static absl::StatusOr<SocketAddress> UnixAbstract(absl::string_view name);
  // Returns the unnamed UNIX address (`unix:`), the peer address of an
  // unbound socket. Nothing can connect to it; binding it asks the kernel
  // for an abstract name of the socket's own (autobind).
  [[nodiscard]] static SocketAddress UnixUnnamed();

  // Copies the address the kernel filled in (accept4, getsockname,
  // getpeername, recvfrom): AF_INET, AF_INET6 or AF_UNIX, with `len` the
  // length it reported. Refuses other families and lengths that do not fit
  // the family. A UNIX address with no name (`len` == sizeof(sa_family_t), as
  // an unbound client's peer address is) is the unnamed address: is_unix()
  // and neither a path nor abstract, printed as `unix:` (see UnixUnnamed).
  // IPv6 flow info is dropped.
  [[nodiscard]] static absl::StatusOr<SocketAddress> FromSockaddr(const sockaddr* addr,
                                                                  socklen_t len);

  // Copies are cheap (a sockaddr_storage and a length); there is no empty
  // state: every SocketAddress is a valid endpoint.
  SocketAddress(const SocketAddress&) = default;
  SocketAddress& operator=(const SocketAddress&) = default;

  // Returns the address to pass to bind/connect/sendto, valid while *this is.
  [[nodiscard]] const sockaddr* data() const noexcept {
    return reinterpret_cast<const sockaddr*>(&storage_);
  }
  // Returns the length to pass along with data().
  [[nodiscard]] socklen_t size() const noexcept { return size_; }
  // Returns AF_INET, AF_INET6 or AF_UNIX.
  [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
  [[nodiscard]] bool is_ipv4() const noexcept { return family() == AF_INET; }
  [[nodiscard]] bool is_ipv6() const noexcept { return family() == AF_INET6; }
  [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
  // Reports whether this is an abstract UNIX address (`unix:@name`).
  [[nodiscard]] bool is_abstract() const noexcept;
  // Reports whether this is the unnamed UNIX address (`unix:`).
  [[nodiscard]] bool is_unnamed() const noexcept {
    return is_unix() && size_ == sizeof(sa_family_t);
  }
  // Returns the port in host order; 0 for a UNIX address.
  [[nodiscard]] uint16_t port() const noexcept;
  // Returns a copy with the port replaced; a UNIX address has no port and is
  // returned unchanged.
  [[nodiscard]] SocketAddress WithPort(uint16_t port) const noexcept;

  // Formats the address in the text form Parse() reads: `127.0.0.1:43125`,
  // `[::1]:43125`, `[fe80::1%2]:80` (scope as a number), `unix:/tmp/x.sock`,
  // `unix:./@x` (a path that begins with '@'), `unix:@name` (the name's
  // bytes as they are, newlines included: escape it before logging it),
  // `unix:` (unnamed). Parse() gives the same address back, byte for byte.
  [[nodiscard]] std::string ToString() const;

  // Compares family, address, port, IPv6 scope id, and UNIX path or name.
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept;

 private:
  // Copies the first `size` bytes of the sockaddr at `bytes` into zeroed
  // storage. Every factory builds a fresh, zero-initialized sockaddr, so that
  // equal addresses are equal byte for byte.
  SocketAddress(const void* bytes, socklen_t size) noexcept;
  // Builds a UNIX address: `name` is a filesystem path or, when `abstract`,
  // an abstract name; refuses names UnixPath()/UnixAbstract() refuse.
  static absl::StatusOr<SocketAddress> Unix(absl::string_view name, bool abstract);

  sockaddr_storage storage_;
  socklen_t size_;
};

}  // namespace conet

#endif  // CONET_NET_SOCKET_ADDRESS_H_
