// examples/udp_echo: sends every UDP datagram back to its sender.
//
//   udp_echo [--listen=HOST:PORT]
//
// Prints `listening on ADDRESS` once bound; SIGINT or SIGTERM stop it with
// exit status 0. A datagram too long for the 64 KiB buffer (impossible over
// IPv4/IPv6 UDP, but reported anyway) is dropped with a message on stderr.
#include <signal.h>

#include <array>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/loop_group.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/task.h"
#include "net/udp.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7008", "IPv4 or [IPv6] address (port 0: any free port)");

namespace {

conet::Task<void> Serve(conet::UdpSocket socket) {
  std::array<char, 65536> buffer;
  while (true) {
    absl::StatusOr<conet::Datagram> got = co_await socket.ReceiveFrom(buffer);
    if (!got.ok()) {
      std::fprintf(stderr, "udp_echo: %s\n", std::string(got.status().message()).c_str());
      continue;
    }
    if (got->truncated) {
      std::fprintf(stderr, "udp_echo: dropped a %zu-byte datagram from %s\n", got->full_size,
                   got->from.ToString().c_str());
      continue;
    }
    absl::StatusOr<size_t> sent =
        co_await socket.SendTo(std::span<const char>(buffer.data(), got->size), got->from);
    if (!sent.ok()) {
      std::fprintf(stderr, "udp_echo: %s\n", std::string(sent.status().message()).c_str());
    }
  }
}

int Fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "udp_echo: %s\n", std::string(status.message()).c_str());
  return code;
}

void PrintUsage() {
  std::printf(
      "usage: udp_echo [--listen=HOST:PORT]\n"
      "Sends every UDP datagram back to its sender.\n"
      "  --listen=HOST:PORT  IPv4 or [IPv6] address (default 127.0.0.1:7008;\n"
      "                      port 0: any free port)\n");
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "udp_echo", PrintUsage);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  absl::StatusOr<conet::SocketAddress> address = conet::SocketAddress::Parse(listen);
  if (!address.ok()) return Fail(address.status(), 2);

  const sigset_t stop_signals = conet::BlockStopSignals();

  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group = conet::LoopGroup::Create(1);
  if (!group.ok()) return Fail(group.status(), 1);
  absl::StatusOr<conet::UdpSocket> socket =
      conet::UdpSocket::Bind(*address, /*reuse_port=*/false, &(*group)->loop(0));
  if (!socket.ok()) return Fail(socket.status(), 1);
  absl::StatusOr<conet::SocketAddress> bound = socket->LocalAddress();
  if (!bound.ok()) return Fail(bound.status(), 1);
  (*group)->SpawnOnEach([&socket](int) { return Serve(std::move(*socket)); });
  conet::ServeUntilStopSignal(**group, bound->ToString(), stop_signals);
  return 0;
}
