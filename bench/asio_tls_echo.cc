// bench/asio_tls_echo: a Boost.Asio C++20-coroutine TLS echo server, the
// baseline `echo_server --cert --key` is measured against (bench/README.md).
//
//   asio_tls_echo --listen=HOST:PORT --cert=PEM --key=PEM
//
// Written the way Asio's examples write it (the C++20 coroutine echo server
// with the ssl::stream of the SSL example): a `listener` coroutine accepts
// with `use_awaitable` and `co_spawn`s one `echo` coroutine per connection,
// which runs async_handshake and then loops async_read_some / async_write on
// an ssl::stream<tcp::socket>, with a 16 KiB buffer as conet's echo session.
// One io_context, one thread. Prints `listening on ADDRESS` once it accepts;
// SIGINT or SIGTERM stop it with exit status 0.
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "absl/flags/flag.h"
#include "net/signals.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7007", "IPV4:PORT");
ABSL_FLAG(std::string, cert, "", "PEM certificate chain");
ABSL_FLAG(std::string, key, "", "PEM private key");

namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::awaitable;
using asio::co_spawn;
using asio::detached;
using asio::use_awaitable;
using asio::ip::tcp;

awaitable<void> echo(ssl::stream<tcp::socket> stream) {
  try {
    co_await stream.async_handshake(ssl::stream_base::server, use_awaitable);
    char data[16384];
    for (;;) {
      std::size_t n = co_await stream.async_read_some(asio::buffer(data), use_awaitable);
      co_await async_write(stream, asio::buffer(data, n), use_awaitable);
    }
  } catch (const std::exception&) {
    // The client's close_notify or end of stream, or a failed handshake.
  }
}

awaitable<void> listener(tcp::acceptor acceptor, ssl::context& context) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
    co_spawn(acceptor.get_executor(), echo(ssl::stream<tcp::socket>(std::move(socket), context)),
             detached);
  }
}

void PrintUsage() {
  std::printf(
      "usage: asio_tls_echo --listen=IPV4:PORT --cert=PEM --key=PEM\n"
      "Echoes every byte back over TLS: a Boost.Asio ssl::stream baseline.\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "asio_tls_echo", PrintUsage, {});
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "asio_tls_echo: --listen=%s: expected IPV4:PORT\n", listen.c_str());
    return 2;
  }
  const sigset_t stop_signals = conet::BlockStopSignals();
  asio::io_context io(1);
  ssl::context context(ssl::context::tls_server);
  std::string bound;
  try {
    context.use_certificate_chain_file(absl::GetFlag(FLAGS_cert));
    context.use_private_key_file(absl::GetFlag(FLAGS_key), ssl::context::pem);
    const tcp::endpoint endpoint(asio::ip::make_address(listen.substr(0, colon)),
                                 static_cast<unsigned short>(std::stoi(listen.substr(colon + 1))));
    tcp::acceptor acceptor(io, endpoint);
    bound = listen.substr(0, colon) + ":" + std::to_string(acceptor.local_endpoint().port());
    co_spawn(io, listener(std::move(acceptor), context), detached);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_tls_echo: %s\n", e.what());
    return 1;
  }
  std::thread runner([&io] { io.run(); });
  std::printf("listening on %s\n", bound.c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  io.stop();
  runner.join();
  return 0;
}
