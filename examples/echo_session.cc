#include "examples/echo_session.h"

#include <array>
#include <span>

#include "absl/status/statusor.h"

namespace conet::examples {

Task<void> Echo(StreamSocket stream) {
  std::array<char, 16384> buffer;
  while (true) {
    absl::StatusOr<size_t> n = co_await stream.ReadSome(buffer);
    if (!n.ok() || *n == 0) break;
    absl::StatusOr<size_t> sent =
        co_await stream.WriteAll(std::span<const char>(buffer.data(), *n));
    if (!sent.ok()) break;
  }
}

}  // namespace conet::examples
