// Boost.Asio's cost per echo round trip, the third point beside
// pingpong_conet.cc and pingpong_epoll.c: the same 64-byte echo over a
// SOCK_STREAM socketpair (or, with --transport=tcp, a TCP connection over
// 127.0.0.1), one process, one thread, one io_context. The server end is echoed by a co_spawned
// C++20 coroutine (async_read_some into 16 KiB, async_write back); the client coroutine does
// async_write of 64 bytes and async_read of exactly 64.
//
//   ./tools/bazel build -c opt //bench:pingpong_asio
//   bazel-bin/bench/pingpong_asio --round-trips=100000 [--transport=tcp]
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/pingpong_flags.h"
#include "bench/stream_pair.h"
#include "boost/asio/awaitable.hpp"
#include "boost/asio/buffer.hpp"
#include "boost/asio/co_spawn.hpp"
#include "boost/asio/detached.hpp"
#include "boost/asio/generic/stream_protocol.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/redirect_error.hpp"
#include "boost/asio/use_awaitable.hpp"
#include "boost/asio/write.hpp"

namespace {

namespace asio = boost::asio;
// One socket type for both transports; the descriptors come from
// make_stream_pair and are handed to Asio with assign().
using Socket = asio::generic::stream_protocol::socket;

constexpr size_t kMessageSize = 64;

// Echoes what arrives until end of stream (or an error).
asio::awaitable<void> Echo(Socket socket) {
  std::array<char, 16384> buffer;
  boost::system::error_code error;
  // Named, not built inside co_await: GCC 12 destroys such temporaries twice.
  auto token = asio::redirect_error(asio::use_awaitable, error);
  const asio::mutable_buffer into = asio::buffer(buffer);
  while (true) {
    const size_t n = co_await socket.async_read_some(into, token);
    if (error) break;
    const asio::const_buffer back = asio::buffer(buffer.data(), n);
    co_await asio::async_write(socket, back, token);
    if (error) break;
  }
}

// Sends a message and reads its echo `round_trips` times, counting them in
// `*done`, then closes the socket (the echo coroutine sees end of stream).
asio::awaitable<void> Client(Socket socket, long round_trips, long* done) {
  std::array<char, kMessageSize> out;
  std::array<char, kMessageSize> in;
  out.fill('x');
  boost::system::error_code error;
  auto token = asio::redirect_error(asio::use_awaitable, error);
  const asio::const_buffer message = asio::buffer(out);
  const asio::mutable_buffer reply = asio::buffer(in);
  for (; *done < round_trips; ++*done) {
    co_await asio::async_write(socket, message, token);
    if (error) break;
    co_await asio::async_read(socket, reply, token);
    if (error) break;
  }
  if (*done > 0 && std::memcmp(out.data(), in.data(), kMessageSize) != 0) *done = -1;
  socket.close(error);
}

}  // namespace

int main(int argc, char** argv) {
  const conet::bench::PingPongFlags flags = conet::bench::ParsePingPongFlags(argc, argv);
  const long round_trips = flags.round_trips;
  int pair[2];
  if (make_stream_pair(flags.transport.c_str(), pair) != 0) return 1;
  const asio::generic::stream_protocol protocol =
      flags.transport == "tcp" ? asio::generic::stream_protocol(AF_INET, IPPROTO_TCP)
                               : asio::generic::stream_protocol(AF_UNIX, 0);
  // Concurrency hint 1: one thread runs this context (Asio's own advice for
  // a single-threaded program).
  asio::io_context context(1);
  Socket client(context);
  Socket server(context);
  // Throws on failure. The descriptors are non-blocking already, as Asio
  // would make them on their first asynchronous operation.
  client.assign(protocol, pair[0]);
  server.assign(protocol, pair[1]);
  long done = 0;
  asio::co_spawn(context, Echo(std::move(server)), asio::detached);
  asio::co_spawn(context, Client(std::move(client), round_trips, &done), asio::detached);
  context.run();
  if (done != round_trips) {
    std::fprintf(stderr, "failed after %ld round trips\n", done);
    return 1;
  }
  std::printf("round_trips=%ld\n", done);
  return 0;
}
