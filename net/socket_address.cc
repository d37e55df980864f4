#include "net/socket_address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace conet {
namespace {

// Where the name starts in a sockaddr_un; also sizeof(sa_family_t).
constexpr socklen_t kSunPathOffset = offsetof(sockaddr_un, sun_path);
static_assert(sizeof(sockaddr_un::sun_path) == SocketAddress::kMaxUnixNameBytes + 1);

// Reads a T out of the stored or caller's bytes (which may be unaligned for
// T; memcpy also keeps clear of strict aliasing).
template <typename T>
T Load(const void* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof(value));
  return value;
}

// Returns the error Parse() gives for `text`, quoted (non-printable bytes
// hex-escaped), followed by `reason`.
absl::Status InvalidAddress(absl::string_view text, absl::string_view reason) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid address \"", absl::CHexEscape(text), "\": ", reason));
}

// Returns `text` in double quotes, non-printable bytes hex-escaped.
std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

// Reports whether `text` is one or more ASCII digits (no sign, no spaces).
bool AllDigits(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Parses decimal digits into a value no greater than `max`, or returns false.
bool ParseBoundedDecimal(absl::string_view digits, uint32_t max, uint32_t* value) {
  if (!AllDigits(digits)) return false;
  uint64_t result = 0;
  for (char c : digits) {
    result = result * 10 + static_cast<uint64_t>(c - '0');
    if (result > max) return false;
  }
  *value = static_cast<uint32_t>(result);
  return true;
}

// Parses PORT; the error message is the bare reason.
absl::StatusOr<uint16_t> ParsePort(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("missing port");
  if (!AllDigits(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port ", Quote(text), ": expected decimal digits"));
  }
  uint32_t port = 0;
  if (!ParseBoundedDecimal(text, 65535, &port)) {
    return absl::InvalidArgumentError(absl::StrCat("port ", text, " out of range 0-65535"));
  }
  return static_cast<uint16_t>(port);
}

// Copies `text` into a NUL-terminated string for a C API, or returns false if
// `text` itself holds a NUL (the C API would silently stop there).
bool ToCString(absl::string_view text, std::string* out) {
  if (text.find('\0') != absl::string_view::npos) return false;
  out->assign(text.data(), text.size());
  return true;
}

// Parses a dotted IPv4 literal (port 0); the error message is the bare reason.
absl::StatusOr<SocketAddress> ParseIpv4Host(absl::string_view host) {
  if (host.empty()) return absl::InvalidArgumentError("missing host");
  std::string c_host;
  in_addr addr;
  if (!ToCString(host, &c_host) || ::inet_pton(AF_INET, c_host.c_str(), &addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad IPv4 literal ", Quote(host), " (names are not resolved here)"));
  }
  return SocketAddress::Ipv4(ntohl(addr.s_addr), 0);
}

// Parses an IPv6 scope: a number, or an interface name looked up with
// if_nametoindex. The error message is the bare reason.
absl::StatusOr<uint32_t> ParseScope(absl::string_view scope) {
  if (scope.empty()) return absl::InvalidArgumentError("empty IPv6 scope id");
  uint32_t id = 0;
  if (AllDigits(scope)) {
    if (!ParseBoundedDecimal(scope, UINT32_MAX, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("IPv6 scope id ", scope, " out of range"));
    }
    return id;
  }
  std::string name;
  if (scope.size() < IF_NAMESIZE && ToCString(scope, &name)) {
    id = ::if_nametoindex(name.c_str());
  }
  if (id == 0) {
    return absl::InvalidArgumentError(absl::StrCat("unknown network interface ", Quote(scope)));
  }
  return id;
}

// Parses the text between the brackets of `[IPV6]:PORT` (port 0 in the result,
// and the bare reason as the error message).
absl::StatusOr<SocketAddress> ParseIpv6Host(absl::string_view host) {
  absl::string_view literal = host;
  uint32_t scope_id = 0;
  if (size_t percent = host.find('%'); percent != absl::string_view::npos) {
    literal = host.substr(0, percent);
    absl::StatusOr<uint32_t> scope = ParseScope(host.substr(percent + 1));
    if (!scope.ok()) return scope.status();
    scope_id = *scope;
  }
  std::string c_literal;
  sockaddr_in6 in6{};
  if (!ToCString(literal, &c_literal) ||
      ::inet_pton(AF_INET6, c_literal.c_str(), &in6.sin6_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad IPv6 literal ", Quote(literal)));
  }
  in6.sin6_family = AF_INET6;
  in6.sin6_scope_id = scope_id;
  return SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
}

// Splits `HOST:PORT` or `[IPV6]:PORT` and parses both halves; the error
// message is the bare reason.
absl::StatusOr<SocketAddress> ParseIp(absl::string_view text) {
  if (text.empty()) return absl::InvalidArgumentError("empty address");
  absl::string_view host;
  absl::string_view port_text;
  const bool bracketed = absl::StartsWith(text, "[");
  if (bracketed) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError("missing ']' after the IPv6 address");
    }
    host = text.substr(1, close - 1);
    absl::string_view after = text.substr(close + 1);
    if (after.empty()) return absl::InvalidArgumentError("missing port");
    if (!absl::ConsumePrefix(&after, ":")) {
      return absl::InvalidArgumentError("expected ':' after ']'");
    }
    port_text = after;
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError("missing port");
    }
    host = text.substr(0, colon);
    if (host.find(':') != absl::string_view::npos) {
      return absl::InvalidArgumentError("IPv6 address must be in brackets");
    }
    port_text = text.substr(colon + 1);
  }
  absl::StatusOr<SocketAddress> addr = bracketed ? ParseIpv6Host(host) : ParseIpv4Host(host);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<uint16_t> port = ParsePort(port_text);
  if (!port.ok()) return port.status();
  return addr->WithPort(*port);
}

}  // namespace

SocketAddress::SocketAddress(const void* bytes, socklen_t size) noexcept : storage_{}, size_(size) {
  std::memcpy(&storage_, bytes, size);
}

namespace {

// Reports whether `path` would read as an abstract name after "unix:": it
// starts with '@', perhaps after some "./". ToString writes such a path with
// one more "./" in front, which Parse takes off again.
bool ReadsAsAbstract(absl::string_view path) {
  while (absl::ConsumePrefix(&path, "./")) {
  }
  return absl::StartsWith(path, "@");
}

}  // namespace

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view text) {
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "unix:")) {
    if (rest.empty()) return UnixUnnamed();
    // The UNIX factories quote "unix:" + name, which is `text` again.
    if (absl::ConsumePrefix(&rest, "@")) return UnixAbstract(rest);
    if (absl::StartsWith(rest, "./") && ReadsAsAbstract(rest.substr(2))) rest.remove_prefix(2);
    return UnixPath(rest);
  }
  absl::StatusOr<SocketAddress> addr = ParseIp(text);
  if (!addr.ok()) return InvalidAddress(text, addr.status().message());
  return addr;
}

SocketAddress SocketAddress::Ipv4(uint32_t host_order_addr, uint16_t port) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  in.sin_addr.s_addr = htonl(host_order_addr);
  return SocketAddress(&in, sizeof(in));
}

SocketAddress SocketAddress::Ipv4Loopback(uint16_t port) { return Ipv4(INADDR_LOOPBACK, port); }

SocketAddress SocketAddress::Ipv6Loopback(uint16_t port) {
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  in6.sin6_addr = in6addr_loopback;
  return SocketAddress(&in6, sizeof(in6));
}

SocketAddress SocketAddress::UnixUnnamed() {
  const sa_family_t family = AF_UNIX;
  return SocketAddress(&family, sizeof(family));
}

absl::StatusOr<SocketAddress> SocketAddress::UnixPath(absl::string_view path) {
  return Unix(path, /*abstract=*/false);
}

absl::StatusOr<SocketAddress> SocketAddress::UnixAbstract(absl::string_view name) {
  return Unix(name, /*abstract=*/true);
}

absl::StatusOr<SocketAddress> SocketAddress::Unix(absl::string_view name, bool abstract) {
  const absl::string_view what = abstract ? "abstract name" : "path";
  const std::string text = absl::StrCat(abstract ? "unix:@" : "unix:", name);
  if (name.empty()) return InvalidAddress(text, absl::StrCat("empty ", what));
  if (!abstract && name.find('\0') != absl::string_view::npos) {
    return InvalidAddress(text, "path contains a NUL byte");
  }
  if (name.size() > kMaxUnixNameBytes) {
    return InvalidAddress(
        text, absl::StrCat(what, " is ", name.size(), " bytes, the limit is ", kMaxUnixNameBytes));
  }
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  // A path ends with a NUL; an abstract name starts with one. Either way the
  // length counts one NUL byte besides the name.
  std::memcpy(un.sun_path + (abstract ? 1 : 0), name.data(), name.size());
  return SocketAddress(&un, static_cast<socklen_t>(kSunPathOffset + 1 + name.size()));
}

absl::StatusOr<SocketAddress> SocketAddress::FromSockaddr(const sockaddr* addr, socklen_t len) {
  if (addr == nullptr) {
    return absl::InvalidArgumentError("invalid sockaddr: null pointer");
  }
  if (len < sizeof(sa_family_t)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid sockaddr: length ", len, " is shorter than its family field"));
  }
  const auto family = Load<sa_family_t>(addr);
  switch (family) {
    case AF_INET:
    case AF_INET6: {
      const socklen_t expected = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      if (len != expected) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid ", family == AF_INET ? "AF_INET" : "AF_INET6",
                         " sockaddr: length ", len, ", expected ", expected));
      }
      if (family == AF_INET) {
        const auto in = Load<sockaddr_in>(addr);
        return Ipv4(ntohl(in.sin_addr.s_addr), ntohs(in.sin_port));
      }
      // Rebuilt field by field: flow info is dropped, so that addresses that
      // print the same compare equal.
      const auto given = Load<sockaddr_in6>(addr);
      sockaddr_in6 in6{};
      in6.sin6_family = AF_INET6;
      in6.sin6_port = given.sin6_port;
      in6.sin6_addr = given.sin6_addr;
      in6.sin6_scope_id = given.sin6_scope_id;
      return SocketAddress(&in6, sizeof(in6));
    }
    case AF_UNIX: {
      if (len > sizeof(sockaddr_un)) {
        return absl::InvalidArgumentError(absl::StrCat("invalid AF_UNIX sockaddr: length ", len,
                                                       ", the most is ", sizeof(sockaddr_un)));
      }
      const char* name = reinterpret_cast<const char*>(addr) + kSunPathOffset;
      const size_t name_len = len - kSunPathOffset;
      if (name_len > 1 && name[0] == '\0') {
        return UnixAbstract(absl::string_view(name + 1, name_len - 1));
      }
      if (name_len > 0 && name[0] != '\0') {
        // The kernel may or may not count the path's terminating NUL.
        return UnixPath(absl::string_view(name, ::strnlen(name, name_len)));
      }
      // No name at all, or a lone NUL: the unnamed address.
      sockaddr_un un{};
      un.sun_family = AF_UNIX;
      return SocketAddress(&un, kSunPathOffset);
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("invalid sockaddr: unsupported address family ", family,
                       " (expected AF_INET, AF_INET6 or AF_UNIX)"));
  }
}

bool SocketAddress::is_abstract() const noexcept {
  return is_unix() && size_ > kSunPathOffset && Load<sockaddr_un>(&storage_).sun_path[0] == '\0';
}

uint16_t SocketAddress::port() const noexcept {
  switch (family()) {
    case AF_INET:
      return ntohs(Load<sockaddr_in>(&storage_).sin_port);
    case AF_INET6:
      return ntohs(Load<sockaddr_in6>(&storage_).sin6_port);
    default:
      return 0;
  }
}

SocketAddress SocketAddress::WithPort(uint16_t port) const noexcept {
  switch (family()) {
    case AF_INET: {
      auto in = Load<sockaddr_in>(&storage_);
      in.sin_port = htons(port);
      return SocketAddress(&in, sizeof(in));
    }
    case AF_INET6: {
      auto in6 = Load<sockaddr_in6>(&storage_);
      in6.sin6_port = htons(port);
      return SocketAddress(&in6, sizeof(in6));
    }
    default:
      return *this;
  }
}

std::string SocketAddress::ToString() const {
  switch (family()) {
    case AF_INET: {
      const auto in = Load<sockaddr_in>(&storage_);
      char buf[INET_ADDRSTRLEN];
      ::inet_ntop(AF_INET, &in.sin_addr, buf, sizeof(buf));
      return absl::StrCat(buf, ":", port());
    }
    case AF_INET6: {
      const auto in6 = Load<sockaddr_in6>(&storage_);
      char buf[INET6_ADDRSTRLEN];
      ::inet_ntop(AF_INET6, &in6.sin6_addr, buf, sizeof(buf));
      const std::string scope = in6.sin6_scope_id == 0 ? "" : absl::StrCat("%", in6.sin6_scope_id);
      return absl::StrCat("[", buf, scope, "]:", port());
    }
    default: {  // AF_UNIX: the factories make nothing else.
      const auto un = Load<sockaddr_un>(&storage_);
      const size_t stored = size_ - kSunPathOffset;  // name plus one NUL
      if (stored == 0) return "unix:";               // unnamed
      if (un.sun_path[0] == '\0') {
        return absl::StrCat("unix:@", absl::string_view(un.sun_path + 1, stored - 1));
      }
      const absl::string_view path(un.sun_path, stored - 1);
      return absl::StrCat(ReadsAsAbstract(path) ? "unix:./" : "unix:", path);
    }
  }
}

bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
  // Every address is built zeroed and field by field, so bytes compare.
  return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
}

}  // namespace conet
