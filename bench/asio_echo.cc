// bench/asio_echo: a Boost.Asio C++20-coroutine echo server, the baseline
// examples/echo_server must beat (bench/README.md).
//
//   asio_echo [--listen=HOST:PORT] [--threads=N]
//
// Written the way Asio's own example does it (asio/example/cpp20/coroutines/
// echo_server.cpp): a `listener` coroutine accepts with `use_awaitable` and
// `co_spawn`s one `echo` coroutine per socket, which loops async_read_some /
// async_write. Only what the benchmark needs is added: the command line of
// examples/echo_server, a 16 KiB buffer (the size conet's echo session reads
// into), and N threads, each running its own io_context (concurrency hint 1)
// with its own SO_REUSEPORT acceptor on the same port (the first bind picks it
// when port 0 was asked). Echoes every byte back; after the client
// half-closes, echoes what is left and closes. Prints `listening on ADDRESS`
// once it accepts connections; SIGINT or SIGTERM stop it with exit status 0.
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "net/signals.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7007", "HOST:PORT or [IPV6]:PORT");
ABSL_FLAG(int, threads, 1, "io_contexts, one per thread, 1 to 256");

namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::co_spawn;
using asio::detached;
using asio::use_awaitable;
using asio::ip::tcp;

using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

awaitable<void> echo(tcp::socket socket) {
  try {
    char data[16384];
    for (;;) {
      std::size_t n = co_await socket.async_read_some(asio::buffer(data), use_awaitable);
      co_await async_write(socket, asio::buffer(data, n), use_awaitable);
    }
  } catch (const std::exception&) {
    // End of file (the client closed its side, everything is echoed) or a
    // failed connection: the socket closes as the frame ends. Asio's example
    // prints the exception; stdout here carries only the listening line.
  }
}

awaitable<void> listener(tcp::acceptor acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
    co_spawn(acceptor.get_executor(), echo(std::move(socket)), detached);
  }
}

// Parses HOST:PORT (an IPv4 literal) or [IPV6]:PORT; throws on anything else.
tcp::endpoint ParseEndpoint(const std::string& text) {
  const bool bracketed = !text.empty() && text[0] == '[';
  const size_t colon = bracketed ? text.find("]:") + 1 : text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    throw std::invalid_argument("invalid address \"" + text +
                                "\": expected HOST:PORT or [IPV6]:PORT");
  }
  const std::string host = bracketed ? text.substr(1, colon - 2) : text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
    throw std::invalid_argument("invalid address \"" + text + "\": bad port");
  }
  asio::ip::address address = asio::ip::make_address(host);
  if (address.is_v6() != bracketed) {
    throw std::invalid_argument("invalid address \"" + text +
                                "\": IPv6 must be in brackets, IPv4 not");
  }
  return tcp::endpoint(address, static_cast<unsigned short>(std::stoi(port)));
}

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const std::string host = endpoint.address().to_string();
  return (endpoint.address().is_v6() ? "[" + host + "]" : host) + ":" +
         std::to_string(endpoint.port());
}

// Opens, binds and listens; SO_REUSEPORT when several threads share the port.
tcp::acceptor Listen(asio::io_context& context, const tcp::endpoint& endpoint, bool reuse_port) {
  tcp::acceptor acceptor(context);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  if (reuse_port) acceptor.set_option(ReusePort(true));
  if (endpoint.address().is_v6()) acceptor.set_option(asio::ip::v6_only(false));
  acceptor.bind(endpoint);
  acceptor.listen();
  return acceptor;
}

void PrintUsage() {
  std::printf(
      "usage: asio_echo [--listen=ADDRESS] [--threads=N]\n"
      "Echoes every byte back over TCP: a Boost.Asio C++20-coroutine baseline.\n"
      "  --listen=ADDRESS  HOST:PORT or [IPV6]:PORT\n"
      "                    (default 127.0.0.1:7007; port 0: any free port)\n"
      "  --threads=N       io_contexts, one per thread, 1 to 256 (default 1)\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "asio_echo", PrintUsage,
                                 {.ranges = {{"threads", 1, 256}}});
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const int threads = absl::GetFlag(FLAGS_threads);
  tcp::endpoint endpoint;
  try {
    endpoint = ParseEndpoint(listen);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: %s\n", e.what());
    return 2;
  }
  // The threads inherit this mask; only sigwait below sees the signals.
  const sigset_t stop_signals = conet::BlockStopSignals();

  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::string bound;
  try {
    for (int i = 0; i < threads; ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));
      tcp::acceptor acceptor = Listen(*contexts.back(), endpoint, threads > 1);
      if (i == 0) {  // the others bind to the port the first one got
        endpoint = acceptor.local_endpoint();
        bound = FormatEndpoint(endpoint);
      }
      co_spawn(*contexts.back(), listener(std::move(acceptor)), detached);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo: listen on %s: %s\n", listen.c_str(), e.what());
    return 1;
  }
  std::vector<std::thread> runners;
  for (auto& context : contexts) {
    runners.emplace_back([&context] { context->run(); });
  }
  std::printf("listening on %s\n", bound.c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  for (auto& context : contexts) context->stop();
  for (auto& runner : runners) runner.join();
  return 0;
}
