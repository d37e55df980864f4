#include "net/buffered_stream.h"

#include <span>

// A stream that is always at its end.
struct EmptyStream {
  conet::Task<absl::StatusOr<size_t>> ReadSome(std::span<char>, const conet::Cancellation&) {
    co_return 0;
  }
  conet::Task<absl::StatusOr<size_t>> WriteAll(conet::ConstBytes data, const conet::Cancellation&) {
    co_return data.size();
  }
};

int main() {
  EmptyStream stream;
  conet::BufferedReader reader(stream);
  conet::Task<absl::StatusOr<std::string_view>> line = reader.ReadLine(80);
  // The task completes without suspending: run it by hand.
  line.handle().resume();
  return conet::IsEndOfStream(line.handle().promise().TakeResult().status()) ? 0 : 1;
}
