// conet's cost per echo round trip: one process, one thread, one EventLoop.
// A 64-byte message goes back and forth over a SOCK_STREAM socketpair (or,
// with --transport=tcp, a TCP connection over 127.0.0.1); the server end is echoed by a detached
// coroutine shaped like examples/echo_session.cc, the client end is driven by the task BlockOn
// runs. Compare with pingpong_epoll.c (plain edge-triggered epoll) and
// pingpong_asio.cc (Boost.Asio coroutines) using
// bench/count_per_round_trip.sh (callgrind instructions, strace syscalls).
//
//   ./tools/bazel build -c opt //bench:pingpong_conet
//   bazel-bin/bench/pingpong_conet --round-trips=100000 [--transport=tcp]
#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "bench/pingpong_flags.h"
#include "bench/stream_pair.h"
#include "examples/echo_session.h"
#include "net/event_loop.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace {

constexpr size_t kMessageSize = 64;

// Sends a message and reads its echo `round_trips` times, then closes the
// stream (the echo task sees end of stream). Yields the round trips done.
conet::Task<long> Client(conet::StreamSocket stream, long round_trips) {
  std::array<char, kMessageSize> out;
  std::array<char, kMessageSize> in;
  out.fill('x');
  const std::span<const char> message(out);
  const std::span<char> reply(in);
  long done = 0;
  for (; done < round_trips; ++done) {
    absl::StatusOr<size_t> sent = co_await stream.WriteAll(message);
    if (!sent.ok()) break;
    absl::StatusOr<size_t> got = co_await stream.ReadExact(reply);
    if (!got.ok()) break;
  }
  if (done > 0 && std::memcmp(out.data(), in.data(), kMessageSize) != 0) done = -1;
  stream.Close();
  co_return done;
}

}  // namespace

int main(int argc, char** argv) {
  const conet::bench::PingPongFlags flags = conet::bench::ParsePingPongFlags(argc, argv);
  const long round_trips = flags.round_trips;
  int pair[2];
  if (make_stream_pair(flags.transport.c_str(), pair) != 0) return 1;
  conet::UniqueFd client_fd(pair[0]);
  conet::UniqueFd server_fd(pair[1]);
  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) {
    std::fprintf(stderr, "%s\n", loop.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<conet::StreamSocket> server =
      conet::StreamSocket::Adopt(std::move(server_fd), loop->get());
  absl::StatusOr<conet::StreamSocket> client =
      conet::StreamSocket::Adopt(std::move(client_fd), loop->get());
  if (!server.ok() || !client.ok()) {
    std::fprintf(stderr, "adopt failed\n");
    return 1;
  }
  (*loop)->SpawnDetached(conet::examples::Echo(std::move(*server)));
  const long done = (*loop)->BlockOn(Client(std::move(*client), round_trips));
  if (done != round_trips) {
    std::fprintf(stderr, "failed after %ld round trips\n", done);
    return 1;
  }
  std::printf("round_trips=%ld\n", done);
  return 0;
}
