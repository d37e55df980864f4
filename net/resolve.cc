#include "net/resolve.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "net/internal/offload.h"

namespace conet {
namespace internal {
namespace {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Splits "HOST:PORT" (HOST not empty, PORT decimal 0-65535).
absl::StatusOr<HostPort> SplitHostPort(absl::string_view target) {
  const size_t colon = target.rfind(':');
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve \"", absl::CHexEscape(target), "\": ", why));
  };
  if (colon == absl::string_view::npos) return invalid("expected HOST:PORT");
  const absl::string_view host = target.substr(0, colon);
  const absl::string_view port = target.substr(colon + 1);
  uint32_t value = 0;
  if (host.empty()) return invalid("missing host");
  if (host.find_first_of(":[]") != absl::string_view::npos) {
    return invalid("bad host (an IPv6 literal goes in brackets: [::1]:80)");
  }
  if (port.empty() || port.find_first_not_of("0123456789") != port.npos ||
      !absl::SimpleAtoi(port, &value) || value > 65535) {
    return invalid("port must be a number from 0 to 65535");
  }
  return HostPort{std::string(host), static_cast<uint16_t>(value)};
}

absl::Status LookupError(int code, int saved_errno, const std::string& host) {
  const std::string what = absl::StrCat("resolve \"", absl::CHexEscape(host), "\"");
  switch (code) {
    case EAI_SYSTEM:
      return absl::ErrnoToStatus(saved_errno, what);
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
      return absl::NotFoundError(absl::StrCat(what, ": ", gai_strerror(code)));
    case EAI_AGAIN:
      return absl::UnavailableError(absl::StrCat(what, ": ", gai_strerror(code)));
    case EAI_MEMORY:
      return absl::ResourceExhaustedError(absl::StrCat(what, ": ", gai_strerror(code)));
    default:
      return absl::UnknownError(absl::StrCat(what, ": ", gai_strerror(code)));
  }
}

}  // namespace

absl::StatusOr<std::vector<SocketAddress>> GetAddrInfo(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  errno = 0;
  const int code = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (code != 0) return LookupError(code, errno, host);
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owner(list, &::freeaddrinfo);
  std::vector<SocketAddress> addresses;
  for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    absl::StatusOr<SocketAddress> address =
        SocketAddress::FromSockaddr(entry->ai_addr, entry->ai_addrlen);
    if (!address.ok()) continue;  // a family conet does not speak
    const SocketAddress with_port = address->WithPort(port);
    if (std::find(addresses.begin(), addresses.end(), with_port) == addresses.end()) {
      addresses.push_back(with_port);
    }
  }
  if (addresses.empty()) {
    return absl::NotFoundError(
        absl::StrCat("resolve \"", absl::CHexEscape(host), "\": no IPv4 or IPv6 address"));
  }
  return addresses;
}

Task<absl::StatusOr<std::vector<SocketAddress>>> ResolveWith(std::string target,
                                                             LookupFunction lookup,
                                                             Cancellation cancel) {
  if (absl::StatusOr<SocketAddress> literal = SocketAddress::Parse(target); literal.ok()) {
    if (literal->is_unnamed()) {
      co_return absl::InvalidArgumentError(
          "resolve \"unix:\": the unnamed UNIX address names no peer to connect to");
    }
    co_return std::vector<SocketAddress>{*literal};
  }
  if (absl::string_view(target).substr(0, 5) == "unix:") {
    co_return SocketAddress::Parse(target).status();  // a bad unix: address
  }
  absl::StatusOr<HostPort> parts = SplitHostPort(target);
  if (!parts.ok()) co_return parts.status();
  // The lookup may outlive this frame (cancellation), so it owns its answer.
  using Answer = absl::StatusOr<std::vector<SocketAddress>>;
  auto answer = std::make_shared<Answer>(absl::UnknownError("not run"));
  // A named job: GCC 12 destroys a lambda temporary inside a co_await
  // expression twice.
  absl::AnyInvocable<void()&&> job = [answer, lookup = std::move(lookup), host = parts->host,
                                      port = parts->port] { *answer = lookup(host, port); };
  absl::Status waited = co_await Offload(std::move(job), std::move(cancel));
  if (!waited.ok()) {
    co_return absl::Status(waited.code(), absl::StrCat("resolve \"", absl::CHexEscape(target),
                                                       "\": ", waited.message()));
  }
  co_return std::move(*answer);
}

}  // namespace internal

Task<absl::StatusOr<std::vector<SocketAddress>>> Resolve(std::string target, Cancellation cancel) {
  return internal::ResolveWith(std::move(target), &internal::GetAddrInfo, std::move(cancel));
}

}  // namespace conet
