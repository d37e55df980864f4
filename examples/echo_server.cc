// examples/echo_server: a TCP or UNIX-stream echo server on conet.
//
//   echo_server [--listen=ADDRESS] [--threads=N]
//               [--cert=PEM --key=PEM [--client-ca=PEM] [--handshake-timeout=10s]]
//
// Echoes every byte back. When a client half-closes (shutdown(SHUT_WR)),
// what it sent has been echoed and the server closes the connection. With
// --threads=N it runs N event loops, one per thread, each with its own
// SO_REUSEPORT listener, so the kernel spreads connections among them (a
// UNIX listener is shared instead). Prints `listening on ADDRESS` once it
// accepts connections. SIGINT or SIGTERM stop it: it stops accepting, lets
// clients finish for up to --drain-timeout, and exits 0.
//
// With --cert and --key it speaks TLS 1.2/1.3 instead (OpenSSL): a peer that
// has not finished its handshake within --handshake-timeout, or that speaks
// plaintext or garbage, is closed; close_notify ends a clean session both
// ways. --client-ca asks every client for a certificate that CA signed.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/echo_session.h"
#include "examples/tls_echo_session.h"
#include "ipc/daemon.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/server.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/throttled_log.h"
#include "net/tls.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7007",
          "HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME (port 0: any free port)");
ABSL_FLAG(int, threads, 1, "event loops, one per thread, 1 to 256");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM/SIGINT, how long open connections may take to finish");
ABSL_FLAG(std::string, upgrade_socket, "",
          "unix:PATH or unix:@NAME: take the listeners over from an older instance answering "
          "there, and answer there for a newer one");
ABSL_FLAG(std::string, cert, "", "PEM certificate chain: serve TLS (with --key)");
ABSL_FLAG(std::string, key, "", "PEM private key of --cert");
ABSL_FLAG(std::string, client_ca, "",
          "PEM CA bundle: require client certificates it signed (mutual TLS)");
ABSL_FLAG(absl::Duration, handshake_timeout, absl::Seconds(10),
          "under TLS, close a peer that has not finished its handshake by then");

namespace {

// What each connection is handed: plaintext echo, or TLS.
conet::ConnectionHandler MakeHandler(const std::optional<conet::TlsContext>& tls) {
  if (!tls) return conet::examples::Echo;
  const absl::Duration timeout = absl::GetFlag(FLAGS_handshake_timeout);
  return [context = *tls, timeout](conet::StreamSocket stream) {
    return conet::examples::EchoTls(std::move(stream), context, timeout);
  };
}

// One loop's server: accepts and echoes until the stop, then drains.
conet::Task<void> ServeLoop(conet::StreamListener listener, const conet::ServeOptions* options,
                            const std::optional<conet::TlsContext>* tls, std::stop_token stop) {
  conet::ThrottledLog errors("echo_server");
  // Named locals, not temporaries inside co_await: see net/task.h.
  conet::ConnectionHandler handler = MakeHandler(*tls);
  absl::AnyInvocable<void(const absl::Status&)> on_error = [&errors](const absl::Status& error) {
    errors.Report(error);
  };
  co_await conet::Serve(std::move(listener), std::move(handler), *options, std::move(stop),
                        std::move(on_error));
}

void PrintUsage() {
  std::printf(
      "usage: echo_server [--listen=ADDRESS] [--threads=N] [--drain-timeout=DURATION]\n"
      "                   [--upgrade-socket=unix:PATH|unix:@NAME]\n"
      "                   [--cert=PEM --key=PEM [--client-ca=PEM] [--handshake-timeout=DURATION]]\n"
      "Echoes every byte back over TCP or a UNIX stream socket.\n"
      "  --listen=ADDRESS  HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME\n"
      "                    (default 127.0.0.1:7007; port 0: any free port)\n"
      "  --threads=N       event loops, one per thread, 1 to 256 (default 1)\n"
      "  --drain-timeout=DURATION  on SIGTERM/SIGINT, time for clients to finish\n"
      "                    (default 10s)\n"
      "  --upgrade-socket=unix:PATH|unix:@NAME  zero-downtime upgrades: take over\n"
      "                    from the instance answering there, then answer there\n"
      "  --cert=PEM --key=PEM  serve TLS 1.2/1.3 with this certificate chain and key\n"
      "  --client-ca=PEM   require client certificates this CA bundle verifies\n"
      "  --handshake-timeout=DURATION  close a TLS peer whose handshake is not done\n"
      "                    by then (default 10s)\n"
      "Socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET) as systemd does.\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
}

// Checks that the TLS flags make sense together (an error is exit 2).
absl::Status CheckTlsFlags() {
  const bool cert = !absl::GetFlag(FLAGS_cert).empty();
  const bool key = !absl::GetFlag(FLAGS_key).empty();
  if (cert != key) return absl::InvalidArgumentError("--cert and --key go together");
  if (!cert && !absl::GetFlag(FLAGS_client_ca).empty()) {
    return absl::InvalidArgumentError("--client-ca needs --cert and --key");
  }
  if (absl::GetFlag(FLAGS_handshake_timeout) <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--handshake-timeout must be positive");
  }
  return absl::OkStatus();
}

// The TLS context --cert/--key (and --client-ca) ask for; none without them.
absl::StatusOr<std::optional<conet::TlsContext>> LoadTls() {
  conet::TlsServerOptions options;
  options.certificate_chain_file = absl::GetFlag(FLAGS_cert);
  options.private_key_file = absl::GetFlag(FLAGS_key);
  options.client_ca_file = absl::GetFlag(FLAGS_client_ca);
  if (options.certificate_chain_file.empty()) return std::nullopt;
  absl::StatusOr<conet::TlsContext> context = conet::TlsContext::Server(options);
  if (!context.ok()) return context.status();
  return std::optional<conet::TlsContext>(*std::move(context));
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "echo_server: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "echo_server", PrintUsage,
                                 {.ranges = {{"threads", 1, 256}}});
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const int threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<conet::SocketAddress> address = conet::SocketAddress::Parse(listen);
  if (!address.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(address.status().message()).c_str());
    return 2;
  }
  if (absl::Status flags = CheckTlsFlags(); !flags.ok()) {
    std::fprintf(stderr, "echo_server: %s\n", std::string(flags.message()).c_str());
    return 2;
  }
  absl::StatusOr<std::optional<conet::TlsContext>> tls = LoadTls();
  if (!tls.ok()) return Fail(std::string(tls.status().message()));
  // The loops' threads inherit this mask; only the daemon's watcher sees them.
  (void)conet::BlockStopSignals();
  absl::StatusOr<std::unique_ptr<conet::ipc::Daemon>> daemon = conet::ipc::Daemon::Start(
      {.program = "echo_server", .upgrade_socket = absl::GetFlag(FLAGS_upgrade_socket)});
  if (!daemon.ok()) return Fail(std::string(daemon.status().message()));

  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group = conet::LoopGroup::Create(threads);
  if (!group.ok()) return Fail(std::string(group.status().message()));
  absl::StatusOr<std::vector<conet::StreamListener>> listeners =
      (*daemon)->ListenStream(*address, **group);
  if (!listeners.ok()) return Fail(std::string(listeners.status().message()));
  conet::ServeOptions options;
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.end_drain = (*daemon)->end_drain_token();
  std::vector<std::string> addresses;
  std::vector<int> fds;  // what a successor is handed
  for (const conet::StreamListener& listener : *listeners) {
    addresses.push_back(listener.address().ToString());
    fds.push_back(listener.fd());
  }
  absl::Status served = (*daemon)->Serve(
      **group, addresses, fds, static_cast<int>(listeners->size()),
      [&](int index, std::stop_token stop) {
        return ServeLoop(std::move((*listeners)[index]), &options, &*tls, std::move(stop));
      });
  if (!served.ok()) return Fail(std::string(served.message()));
  return 0;
}
