// examples/kv_server: an in-memory key-value store that speaks a subset of
// the Redis protocol, so that redis-cli, redis-benchmark and Redis client
// libraries work with it.
//
//   kv_server [--listen=ADDRESS] [--threads=N] [--max-connections=N]
//             [--idle-timeout=DURATION] [--drain-timeout=DURATION]
//
// Commands: PING, ECHO, GET, SET [EX|PX] [NX|XX], DEL, EXISTS, INCR, QUIT
// (examples/kv/commands.h), as RESP2 arrays or inline lines, pipelined and
// split anywhere. Every loop serves the same store. A connection over
// --max-connections is told "-ERR max number of clients reached" and closed;
// one idle for --idle-timeout is closed. SIGINT or SIGTERM stop it: it stops
// accepting, lets clients finish for up to --drain-timeout, and exits 0.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/kv/commands.h"
#include "examples/kv/resp.h"
#include "examples/kv/store.h"
#include "ipc/daemon.h"
#include "net/buffered_stream.h"
#include "net/loop_group.h"
#include "net/server.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/sync.h"
#include "net/task.h"
#include "net/throttled_log.h"
#include "net/timer.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:6379",
          "HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME (port 0: any free port)");
ABSL_FLAG(int, threads, 1, "event loops, one per thread, sharing one store, 1 to 256");
ABSL_FLAG(int64_t, max_connections, 10000, "open connections at most, 1 to 1000000");
ABSL_FLAG(absl::Duration, idle_timeout, absl::ZeroDuration(),
          "close a connection idle this long (0: never)");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM/SIGINT, how long open connections may take to finish");
ABSL_FLAG(std::string, upgrade_socket, "",
          "unix:PATH or unix:@NAME: take the listeners over from an older instance answering "
          "there, and answer there for a newer one");

namespace {

// Replies are sent once this much is pending, even mid-batch.
constexpr size_t kFlushAt = 64 * 1024;

int64_t NowMs() { return absl::GetCurrentTimeNanos() / 1000000; }

// Batches one connection runs before it lets the loop's other work go first.
constexpr int kBatchesPerTurn = 64;

// Runs the whole requests buffered, appending their replies; flushes
// midway when much is pending. Yields whether the connection stays open.
conet::Task<bool> RunBuffered(conet::BufferedReader<conet::StreamSocket>& reader,
                              conet::BufferedWriter<conet::StreamSocket>& writer,
                              kv::Request& request, kv::Store* store, absl::Duration idle_timeout) {
  int64_t now_ms = NowMs();
  while (true) {
    kv::ParseResult parsed = kv::ParseRequest(reader.buffered(), &request);
    if (parsed.state == kv::ParseState::kIncomplete) {
      // Redis's query buffer limit: a request this large is refused.
      co_return reader.buffered().size() <= kv::kMaxQueryBytes;
    }
    if (parsed.state == kv::ParseState::kError) {
      kv::AppendError(parsed.error, &writer.pending());
      co_return false;
    }
    kv::Outcome outcome = kv::Outcome::kContinue;
    if (!request.args.empty()) {
      outcome = kv::Execute(request.args, *store, now_ms, &writer.pending());
    }
    reader.Consume(parsed.consumed);
    if (outcome == kv::Outcome::kCloseSilently) {
      writer.pending().clear();
      co_return false;
    }
    if (outcome == kv::Outcome::kClose) co_return false;
    if (writer.pending().size() >= kFlushAt) {
      // Named, not a temporary inside co_await: see net/task.h.
      const conet::Cancellation idle = conet::IdleCancellation(idle_timeout);
      absl::Status sent = co_await writer.Flush(idle);
      if (!sent.ok()) co_return false;
      now_ms = NowMs();  // the flush may have waited
    }
  }
}

// One client: runs every whole request buffered, sends the replies in one
// write, reads more; until the client closes, QUIT, a protocol error, the
// idle timeout or the drain's end. Out of memory, only this connection
// goes.
conet::Task<void> ServeClient(conet::StreamSocket stream, kv::Store* store,
                              absl::Duration idle_timeout) {
  conet::BufferedReader reader(stream, 16 * 1024);
  conet::BufferedWriter writer(stream);
  kv::Request request;
  try {
    for (int batch = 1;; ++batch) {
      const bool open = co_await RunBuffered(reader, writer, request, store, idle_timeout);
      const conet::Cancellation write_idle = conet::IdleCancellation(idle_timeout);
      absl::Status sent = co_await writer.Flush(write_idle);
      if (!sent.ok() || !open) co_return;
      // A client that keeps its socket full never makes a read wait.
      if (batch % kBatchesPerTurn == 0) co_await conet::Yield();
      const conet::Cancellation read_idle = conet::IdleCancellation(idle_timeout);
      absl::StatusOr<size_t> read = co_await reader.ReadMore(read_idle);
      if (!read.ok() || *read == 0) co_return;
    }
  } catch (const std::bad_alloc&) {
    // The connection's buffers are freed as its frame goes.
  }
}

// Drops expired keys a shard at a time, ten times a second.
conet::Task<void> SweepExpired(kv::Store* store, std::stop_token stop) {
  const conet::Cancellation until_stop(std::move(stop));
  while (true) {
    absl::Status slept = co_await conet::Sleep(absl::Milliseconds(100), until_stop);
    if (!slept.ok()) break;
    store->SweepExpired(NowMs());
  }
}

// One loop's server: its listener's accept loop and drain, over the store
// every loop shares; the first loop also sweeps expired keys.
conet::Task<void> ServeLoop(conet::StreamListener listener, kv::Store* store,
                            conet::ServeOptions options, absl::Duration idle_timeout, bool sweeps,
                            std::stop_token stop) {
  if (sweeps) conet::EventLoop::Current()->SpawnDetached(SweepExpired(store, stop));
  conet::ThrottledLog errors("kv_server");
  // Named locals, not temporaries inside co_await: see net/task.h.
  conet::ConnectionHandler handler = [store, idle_timeout](conet::StreamSocket stream) {
    return ServeClient(std::move(stream), store, idle_timeout);
  };
  absl::AnyInvocable<void(const absl::Status&)> on_error = [&errors](const absl::Status& error) {
    errors.Report(error);
  };
  co_await conet::Serve(std::move(listener), std::move(handler), options, std::move(stop),
                        std::move(on_error));
}

// Makes room for `max_connections` descriptors and a few of the server's
// own, as Redis does for maxclients: raises the soft limit as far as the
// hard one allows; if that is still too low, lowers the cap and says so
// (over the limit, clients would wait in the backlog instead of hearing
// "max number of clients reached").
int64_t FitDescriptorLimit(int64_t max_connections) {
  constexpr int64_t kReserved = 32;
  rlimit limit;
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return max_connections;
  const rlim_t wanted = static_cast<rlim_t>(max_connections + kReserved);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) (void)::getrlimit(RLIMIT_NOFILE, &limit);
  }
  if (limit.rlim_cur >= wanted) return max_connections;
  const int64_t fitted = std::max<int64_t>(1, static_cast<int64_t>(limit.rlim_cur) - kReserved);
  std::fprintf(stderr,
               "kv_server: the descriptor limit is %llu: --max-connections lowered from %lld to "
               "%lld\n",
               static_cast<unsigned long long>(limit.rlim_cur),
               static_cast<long long>(max_connections), static_cast<long long>(fitted));
  return fitted;
}

void PrintUsage() {
  std::printf(
      "usage: kv_server [--listen=ADDRESS] [--threads=N] [--max-connections=N]\n"
      "                 [--idle-timeout=DURATION] [--drain-timeout=DURATION]\n"
      "                 [--upgrade-socket=unix:PATH|unix:@NAME]\n"
      "An in-memory key-value store speaking a subset of the Redis protocol\n"
      "(PING ECHO GET SET DEL EXISTS INCR QUIT; RESP2 and inline commands).\n"
      "  --listen=ADDRESS         HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME\n"
      "                           (default 127.0.0.1:6379; port 0: any free port)\n"
      "  --threads=N              event loops sharing one store, 1 to 256 (default 1)\n"
      "  --max-connections=N      open connections at most (default 10000)\n"
      "  --idle-timeout=DURATION  close connections idle this long (default 0: never)\n"
      "  --drain-timeout=DURATION on SIGTERM/SIGINT, time for clients to finish\n"
      "                           (default 10s)\n"
      "  --upgrade-socket=unix:PATH|unix:@NAME  zero-downtime upgrades: take over\n"
      "                           from the instance answering there, then answer there\n"
      "Socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET) as systemd does.\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "kv_server: %s\n", std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(
      argc, argv, "kv_server", PrintUsage,
      {.ranges = {{"threads", 1, 256}, {"max_connections", 1, 1000000}}});
  absl::StatusOr<conet::SocketAddress> address =
      conet::SocketAddress::Parse(absl::GetFlag(FLAGS_listen));
  if (!address.ok()) {
    conet::tools::UsageError("kv_server", std::string(address.status().message()));
  }
  const absl::Duration idle_timeout = absl::GetFlag(FLAGS_idle_timeout);
  // The loops' threads inherit this mask: only the daemon's watcher sees them.
  (void)conet::BlockStopSignals();
  absl::StatusOr<std::unique_ptr<conet::ipc::Daemon>> daemon = conet::ipc::Daemon::Start(
      {.program = "kv_server", .upgrade_socket = absl::GetFlag(FLAGS_upgrade_socket)});
  if (!daemon.ok()) return Fail(daemon.status());

  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group =
      conet::LoopGroup::Create(absl::GetFlag(FLAGS_threads));
  if (!group.ok()) return Fail(group.status());
  absl::StatusOr<std::vector<conet::StreamListener>> listeners =
      (*daemon)->ListenStream(*address, **group);
  if (!listeners.ok()) return Fail(listeners.status());
  std::vector<std::string> addresses;
  std::vector<int> fds;  // what a successor is handed
  for (const conet::StreamListener& listener : *listeners) {
    addresses.push_back(listener.address().ToString());
    fds.push_back(listener.fd());
  }

  kv::Store store;
  conet::ConnectionLimiter limiter(FitDescriptorLimit(absl::GetFlag(FLAGS_max_connections)));
  conet::ServeOptions options;
  options.limiter = &limiter;
  options.over_limit_reply = "-ERR max number of clients reached\r\n";
  options.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  options.end_drain = (*daemon)->end_drain_token();
  absl::Status served =
      (*daemon)->Serve(**group, addresses, fds, static_cast<int>(listeners->size()),
                       [&](int index, std::stop_token stop) {
                         return ServeLoop(std::move((*listeners)[index]), &store, options,
                                          idle_timeout, index == 0, std::move(stop));
                       });
  if (!served.ok()) return Fail(served);
  return 0;
}
