#include "examples/echo_session.h"

#include <array>
#include <span>

#include "absl/status/statusor.h"

namespace conet::examples {

Task<void> Echo(StreamSocket stream) {
  std::array<char, 16384> buffer;
  while (true) {
    absl::StatusOr<size_t> n = co_await stream.ReadSome(buffer);
    if (!n.ok()) co_return;
    if (*n == 0) break;
    absl::StatusOr<size_t> sent =
        co_await stream.WriteAll(std::span<const char>(buffer.data(), *n));
    if (!sent.ok()) co_return;
  }
  // End of stream: the peer's half-close, or the drain's deadline ending
  // reads. Send our FIN behind every byte echoed before closing: a peer
  // still sending at the deadline then reads all of it and end of stream,
  // where a close with its newest bytes unread would reset the connection
  // (and the reset could overtake what it had not read yet).
  (void)stream.ShutdownWrite();
}

}  // namespace conet::examples
