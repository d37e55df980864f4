// examples/echo_server: a TCP or UNIX-stream echo server on conet.
//
//   echo_server [--listen=ADDRESS] [--threads=N]
//
// Echoes every byte back. When a client half-closes (shutdown(SHUT_WR)),
// what it sent has been echoed and the server closes the connection. With
// --threads=N it runs N event loops, one per thread, each with its own
// SO_REUSEPORT listener, so the kernel spreads connections among them (a
// UNIX listener is shared instead). Prints `listening on ADDRESS` once it
// accepts connections; SIGINT or SIGTERM stop it with exit status 0.
#include <fcntl.h>
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/echo_session.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/throttled_log.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7007",
          "HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME (port 0: any free port)");
ABSL_FLAG(int, threads, 1, "event loops, one per thread, 1 to 256");

namespace {

conet::Task<void> Serve(conet::StreamListener listener) {
  conet::ThrottledLog errors("echo_server");
  while (true) {
    absl::StatusOr<conet::StreamSocket> stream = co_await listener.Accept();
    if (!stream.ok()) {
      errors.Report(stream.status());
      continue;
    }
    conet::EventLoop::Current()->SpawnDetached(conet::examples::Echo(std::move(*stream)));
  }
}

// Binds one listener per loop: TCP ones share the port with SO_REUSEPORT
// (the first bind picks it when port 0 was asked); a UNIX listener is bound
// once and its descriptor shared.
absl::StatusOr<std::vector<conet::StreamListener>> BindListeners(
    const conet::SocketAddress& address, conet::LoopGroup& group) {
  std::vector<conet::StreamListener> listeners;
  conet::ListenOptions options;
  options.reuse_port = group.size() > 1 && !address.is_unix();
  absl::StatusOr<conet::StreamListener> first =
      conet::StreamListener::Bind(address, options, &group.loop(0));
  if (!first.ok()) return first.status();
  const conet::SocketAddress bound = first->address();
  listeners.push_back(std::move(*first));
  for (int i = 1; i < group.size(); ++i) {
    absl::StatusOr<conet::StreamListener> next =
        address.is_unix() ? conet::StreamListener::Adopt(
                                conet::UniqueFd(::fcntl(listeners[0].fd(), F_DUPFD_CLOEXEC, 0)), {},
                                &group.loop(i))
                          : conet::StreamListener::Bind(bound, options, &group.loop(i));
    if (!next.ok()) return next.status();
    listeners.push_back(std::move(*next));
  }
  return listeners;
}

void PrintUsage() {
  std::printf(
      "usage: echo_server [--listen=ADDRESS] [--threads=N]\n"
      "Echoes every byte back over TCP or a UNIX stream socket.\n"
      "  --listen=ADDRESS  HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME\n"
      "                    (default 127.0.0.1:7007; port 0: any free port)\n"
      "  --threads=N       event loops, one per thread, 1 to 256 (default 1)\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
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
  // The loops' threads inherit this mask; only sigwait below sees the signals.
  const sigset_t stop_signals = conet::BlockStopSignals();

  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group = conet::LoopGroup::Create(threads);
  if (!group.ok()) return Fail(std::string(group.status().message()));
  absl::StatusOr<std::vector<conet::StreamListener>> listeners = BindListeners(*address, **group);
  if (!listeners.ok()) return Fail(std::string(listeners.status().message()));
  const std::string bound = (*listeners)[0].address().ToString();
  (*group)->SpawnOnEach([&listeners](int index) { return Serve(std::move((*listeners)[index])); });
  conet::ServeUntilStopSignal(**group, bound, stop_signals);
  return 0;
}
