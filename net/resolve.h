// File: net/resolve.h
//
// Resolve turns "HOST:PORT", where HOST may be a name, into the addresses to
// try, without blocking the EventLoop: getaddrinfo(3) runs on a thread of its
// own and the coroutine awaits its answer.
//
//   absl::StatusOr<std::vector<conet::SocketAddress>> addrs =
//       co_await conet::Resolve("localhost:7007", conet::Within(absl::Seconds(2)));
//   // e.g. {[::1]:7007, 127.0.0.1:7007}, in getaddrinfo's order
//
// Literal addresses in the syntax SocketAddress::Parse reads (`127.0.0.1:80`,
// `[::1]:80`, `unix:PATH`, `unix:@NAME`) come back at once, with no thread
// and no lookup. StreamSocket::Connect(std::string) resolves with this and
// tries each address in turn.
#ifndef CONET_NET_RESOLVE_H_
#define CONET_NET_RESOLVE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "net/cancellation.h"
#include "net/socket_address.h"
#include "net/task.h"

namespace conet {

// Resolves `target` ("HOST:PORT" with HOST a name or literal, "[IPV6]:PORT",
// or a unix: address). co_await yields the addresses, duplicates removed, in
// the resolver's order of preference; InvalidArgumentError for a target
// that is not HOST:PORT; NotFoundError when the name does not exist;
// UnavailableError when the resolver failed temporarily. Cancellation (the
// token, the deadline, or the awaiting task's token) ends the wait at once
// with CancelledError / DeadlineExceededError; the lookup itself cannot be
// interrupted and finishes in the background, its answer discarded.
Task<absl::StatusOr<std::vector<SocketAddress>>> Resolve(std::string target,
                                                         Cancellation cancel = {});

namespace internal {

// The blocking lookup Resolve() runs off the loop: host name and port in,
// addresses out. Tests substitute their own.
using LookupFunction = std::function<absl::StatusOr<std::vector<SocketAddress>>(
    const std::string& host, uint16_t port)>;

// Looks `host` up with getaddrinfo (any family, stream sockets).
absl::StatusOr<std::vector<SocketAddress>> GetAddrInfo(const std::string& host, uint16_t port);

// Resolve() with `lookup` instead of GetAddrInfo.
Task<absl::StatusOr<std::vector<SocketAddress>>> ResolveWith(std::string target,
                                                             LookupFunction lookup,
                                                             Cancellation cancel = {});

}  // namespace internal
}  // namespace conet

#endif  // CONET_NET_RESOLVE_H_
