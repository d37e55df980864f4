// File: examples/echo_session.h
//
// Echo is the per-connection loop of conet's echo servers
// (examples/echo_server, examples/privsep_server): read what is there,
// write it all back, until the client closes its side. EchoTls is the same
// over TLS (echo_server --cert/--key).
#ifndef CONET_EXAMPLES_ECHO_SESSION_H_
#define CONET_EXAMPLES_ECHO_SESSION_H_

#include <array>
#include <span>

#include "absl/status/statusor.h"
#include "net/stream_socket.h"
#include "net/task.h"

namespace conet::examples {

// Writes back what `stream` (a StreamSocket, a TlsStream) reads, until the
// stream ends (true) or fails (false).
template <typename Stream>
Task<bool> EchoUntilEnd(Stream& stream) {
  std::array<char, 16384> buffer;
  while (true) {
    absl::StatusOr<size_t> n = co_await stream.ReadSome(buffer);
    if (!n.ok()) co_return false;
    if (*n == 0) co_return true;
    absl::StatusOr<size_t> sent =
        co_await stream.WriteAll(std::span<const char>(buffer.data(), *n));
    if (!sent.ok()) co_return false;
  }
}

// Echoes until the client closes its side or the connection fails, then
// closes the stream.
Task<void> Echo(StreamSocket stream);

}  // namespace conet::examples

#endif  // CONET_EXAMPLES_ECHO_SESSION_H_
