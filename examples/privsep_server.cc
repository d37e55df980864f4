// examples/privsep_server: an echo server split into a privileged monitor
// and an unprivileged worker, the OpenSSH pattern.
//
//   privsep_server --listen=ADDRESS [--user=nobody]
//                  [--log=PATH (default /var/log/privsep_server.log)]
//                  [--drain-timeout=10s] [--upgrade-socket=unix:PATH|unix:@NAME]
//
// The monitor keeps its privileges and does only what needs them: it owns
// the listening socket (bound, inherited from systemd, or handed over by an
// older instance), opens the log, and starts the worker (this same binary,
// `--role=worker`) with one end of a seqpacket socketpair. The worker sets
// PR_SET_NO_NEW_PRIVS, drops to --user when started as root, asks the
// monitor over the channel for what it cannot get itself, and serves echo.
//
// Channel protocol (ipc::Channel messages, ASCII):
//   worker -> monitor  Call HELLO   monitor -> worker  Reply LISTEN +
//                                   [listener..., log]
//   worker -> monitor  Send READY   (no reply; the monitor prints
//                                   `listening on ADDRESS`)
//   monitor -> worker  Send STOP    stop accepting and drain
//   monitor -> worker  Send END     end the drain at once
//   anything else                   ERR unknown request (a Reply to a Call)
// The monitor runs the daemon life cycle (ipc/daemon.h): READY=1 once the
// worker serves; on SIGINT/SIGTERM, or once a successor took over, it tells
// the worker STOP and exits 0 when the worker has drained; a second signal
// sends END. If the worker dies on its own, the monitor exits 1; if the
// monitor goes, the worker closes everything and exits.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "examples/echo_session.h"
#include "ipc/channel.h"
#include "ipc/daemon.h"
#include "ipc/sandbox.h"
#include "ipc/spawn_worker.h"
#include "ipc/unix_socket.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/regular_file.h"
#include "net/server.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/throttled_log.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "net/when_any.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "", "HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME");
ABSL_FLAG(std::string, user, "nobody", "the worker's user when started as root");
// Where the connection log goes unless --log says otherwise: a daemon's log
// lives at a fixed absolute place, in a directory only root may write,
// never relative to wherever it happened to be started.
constexpr char kDefaultLog[] = "/var/log/privsep_server.log";
ABSL_FLAG(std::string, log, kDefaultLog, "connection log");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM/SIGINT or an upgrade, how long open connections may take to finish");
ABSL_FLAG(std::string, upgrade_socket, "",
          "unix:PATH or unix:@NAME: take the listener over from an older instance answering "
          "there, and answer there for a newer one");
ABSL_FLAG(std::string, sandbox, "best-effort",
          "strict, best-effort or off: how far the worker locks itself down");
// The monitor starts this binary again with --role=worker.
ABSL_FLAG(std::string, role, "monitor", "monitor or worker (internal)");

namespace {

struct Flags {
  std::string listen;
  std::string user;
  std::string log;
  absl::Duration drain_timeout;
  std::string upgrade_socket;
  std::string sandbox;  // as given: passed on to the worker
  conet::ipc::SandboxMode sandbox_mode = conet::ipc::SandboxMode::kBestEffort;
};

int Fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "privsep_server: %s\n", std::string(status.message()).c_str());
  return code;
}

// The worker's errors say whose they are.
int WorkerFail(const absl::Status& status, int code) {
  std::fprintf(stderr, "privsep_server worker: %s\n", std::string(status.message()).c_str());
  return code;
}

// --- Monitor ---------------------------------------------------------------

// Opens the log for appending (the worker could not: it has no privileges).
// The worker gets this descriptor, so it must be the file the operator
// meant: OpenRegularFile follows no symlink planted at the path, and
// refuses a FIFO (whose writer would block, or die of SIGPIPE once the
// reader goes), a device, and a hard link to some other file.
absl::StatusOr<conet::UniqueFd> OpenLog(const std::string& path) {
  absl::StatusOr<conet::UniqueFd> log =
      conet::OpenRegularFile(path, {.flags = O_WRONLY | O_APPEND, .create_mode = 0640});
  if (!log.ok()) {
    return absl::Status(log.status().code(), absl::StrCat("log ", log.status().message()));
  }
  return log;
}

// What the monitor's server task works with.
struct Monitored {
  Flags flags;
  conet::ipc::Daemon* daemon;
  std::vector<conet::StreamListener> listeners;  // the monitor keeps its own
  conet::UniqueFd log;
  int exit_code = 0;
};

// Answers `request` (alive until the co_await completes): with a Reply if
// the worker Called, else with a message.
conet::Task<absl::Status> Answer(conet::ipc::Channel* channel, const conet::ipc::Message* request,
                                 std::string bytes, std::vector<int> fds) {
  if (request->request_id == 0) co_return co_await channel->Send(std::move(bytes), std::move(fds));
  co_return co_await channel->Reply(*request, std::move(bytes), std::move(fds));
}

// Answers the worker's requests until it goes away.
conet::Task<absl::Status> ServeWorker(conet::ipc::Channel* channel, const Monitored* monitored) {
  while (true) {
    absl::StatusOr<conet::ipc::Message> request = co_await channel->Receive();
    if (!request.ok()) co_return request.status();
    absl::Status replied;
    if (request->bytes == "HELLO") {
      std::vector<int> fds;
      for (const conet::StreamListener& listener : monitored->listeners) {
        fds.push_back(listener.fd());
      }
      fds.push_back(monitored->log.fd());
      replied = co_await Answer(channel, &*request, "LISTEN", std::move(fds));
    } else if (request->bytes == "READY") {
      monitored->daemon->MarkReady();  // it prints `listening on` and tells systemd
    } else {
      std::vector<int> none;
      replied = co_await Answer(channel, &*request, "ERR unknown request", std::move(none));
    }
    if (!replied.ok()) co_return replied;
  }
}

// Waits until `token` is stopped (or the awaiting task is cancelled).
conet::Task<void> UntilStopped(std::stop_token token) {
  const conet::Cancellation until(std::move(token));
  (void)co_await conet::Sleep(absl::InfiniteDuration(), until);
}

// Waits for a worker told to STOP: it exits once its connections are done
// (the drain's deadline and grace bound that). The end of the drain is
// passed on as END; a worker that outlives all of it is killed.
conet::Task<absl::StatusOr<int>> WaitForDrain(conet::ipc::Worker* worker,
                                              conet::ipc::Channel* channel,
                                              const Monitored* monitored) {
  const conet::Cancellation drained =
      conet::Within(monitored->flags.drain_timeout + absl::Seconds(5));
  auto ended = co_await conet::WhenAny(worker->Wait(drained),
                                       UntilStopped(monitored->daemon->end_drain_token()));
  if (ended.index == 0) co_return std::get<0>(std::move(ended.value));
  (void)co_await channel->Send("END");
  absl::StatusOr<int> status = co_await worker->Wait(conet::Within(absl::Seconds(5)));
  co_return status;
}

std::string Describe(const absl::StatusOr<int>& status) {
  return status.ok() ? absl::StrCat("status ", *status) : std::string(status.status().message());
}

// Runs a worker serving the listeners until the stop.
conet::Task<void> Supervise(Monitored* monitored, std::stop_token stop) {
  conet::ipc::WorkerOptions options;
  // Set before the worker's code runs. This loop's thread lives as long as
  // the monitor, so the signal comes only when the monitor is gone.
  options.parent_death_signal = SIGKILL;
  options.no_new_privs = true;
  absl::StatusOr<conet::ipc::Worker> worker = conet::ipc::SpawnWorker(
      {conet::ipc::SelfExecutable(), "--role=worker", "--user=" + monitored->flags.user,
       "--sandbox=" + monitored->flags.sandbox,
       "--drain-timeout=" + absl::FormatDuration(monitored->flags.drain_timeout)},
      std::move(options));
  if (!worker.ok()) {
    monitored->exit_code = Fail(worker.status(), 1);
    co_return;
  }
  conet::ipc::Channel channel(std::move(worker->channel()));
  auto ended = co_await conet::WhenAny(ServeWorker(&channel, monitored), UntilStopped(stop));
  if (ended.index == 0) {  // the worker went away on its own
    absl::StatusOr<int> status = co_await worker->Wait(conet::Within(absl::Seconds(5)));
    std::fprintf(stderr, "privsep_server: the worker ended (%s)\n", Describe(status).c_str());
    monitored->exit_code = 1;
    co_return;
  }
  // Ours closed first, then the worker's: it accepts what is queued before
  // it closes its own, so nothing queued is reset (after a handoff the
  // successor holds the socket too, and this changes nothing for it).
  monitored->listeners.clear();
  (void)co_await channel.Send("STOP");
  absl::StatusOr<int> status = co_await WaitForDrain(&*worker, &channel, monitored);
  if (!status.ok() || *status != 0) {
    if (!status.ok()) (void)worker->Kill(SIGKILL);
    std::fprintf(stderr, "privsep_server: the worker did not stop cleanly (%s)\n",
                 Describe(status).c_str());
    monitored->exit_code = 1;
  }
}

// The monitor's one server task. The listeners are closed on the loop
// they are registered with, before it goes.
conet::Task<void> RunWorker(Monitored* monitored, std::stop_token stop) {
  co_await Supervise(monitored, std::move(stop));
  monitored->listeners.clear();
}

int Monitor(Flags flags) {
  // Without --listen only an inherited listener will do (checked below).
  conet::SocketAddress address = conet::SocketAddress::UnixUnnamed();
  if (!flags.listen.empty()) {
    absl::StatusOr<conet::SocketAddress> parsed = conet::SocketAddress::Parse(flags.listen);
    if (!parsed.ok()) return Fail(parsed.status(), 2);
    address = *parsed;
  }
  // The loop's thread inherits this mask; only the daemon's watcher sees them.
  conet::BlockStopSignals();
  conet::ipc::DaemonOptions options;
  options.program = "privsep_server";
  options.upgrade_socket = flags.upgrade_socket;
  options.wait_for_ready = true;  // the worker serves, not this process
  absl::StatusOr<std::unique_ptr<conet::ipc::Daemon>> daemon =
      conet::ipc::Daemon::Start(std::move(options));
  // A bad variable or flag is a usage error; a bad inherited socket is not.
  if (!daemon.ok()) return Fail(daemon.status(), absl::IsInvalidArgument(daemon.status()) ? 2 : 1);
  if (flags.listen.empty() && std::string_view((*daemon)->origin()) == "bound") {
    return Fail(absl::InvalidArgumentError("--listen is required"), 2);
  }
  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group = conet::LoopGroup::Create(1);
  if (!group.ok()) return Fail(group.status(), 1);
  Monitored monitored{.flags = flags, .daemon = daemon->get()};
  absl::StatusOr<std::vector<conet::StreamListener>> listeners =
      (*daemon)->ListenStream(address, **group);
  if (!listeners.ok()) return Fail(listeners.status(), 1);
  monitored.listeners = std::move(*listeners);
  absl::StatusOr<conet::UniqueFd> log = OpenLog(flags.log);
  if (!log.ok()) return Fail(log.status(), 1);
  monitored.log = std::move(*log);
  std::vector<std::string> addresses;
  std::vector<int> fds;  // what a successor is handed
  for (const conet::StreamListener& listener : monitored.listeners) {
    addresses.push_back(listener.address().ToString());
    fds.push_back(listener.fd());
  }
  absl::Status served = (*daemon)->Serve(
      **group, addresses, fds, 1,
      [&](int, std::stop_token stop) { return RunWorker(&monitored, std::move(stop)); });
  if (!served.ok()) return Fail(served, 1);
  return monitored.exit_code;
}

// --- Worker ----------------------------------------------------------------

// Locks the worker down once it holds its descriptors (ipc/sandbox.h): it
// becomes --user, gains no privileges, holds no capabilities, starts no
// process, reaches no file, no TCP and nothing outside its sandbox, and
// makes only the system calls of an event loop (and the log's write).
// --sandbox=off still drops to --user with no new privileges: that split
// is the point of this program.
absl::Status LockDown(const Flags& flags) {
  conet::ipc::SandboxPolicy policy = conet::ipc::WorkerSandbox();
  conet::ipc::SandboxMode mode = flags.sandbox_mode;
  if (mode == conet::ipc::SandboxMode::kOff) {
    policy = conet::ipc::EmptySandbox();
    policy.no_new_privs = true;
    mode = conet::ipc::SandboxMode::kStrict;
  }
  policy.user = flags.user;
  absl::StatusOr<conet::ipc::SandboxReport> report = conet::ipc::ApplySandbox(policy, mode);
  if (!report.ok()) return report.status();
  std::string line = report->ToString();
  if (flags.sandbox_mode == conet::ipc::SandboxMode::kOff) {
    line = absl::StrCat("sandbox: off, only ", absl::StripPrefix(line, "sandbox: enforced "));
  }
  std::fprintf(stderr, "privsep_server worker: %s\n", line.c_str());
  return absl::OkStatus();
}

// Logs where the connection comes from, then echoes.
conet::Task<void> LogThenEcho(int log_fd, conet::StreamSocket stream) {
  absl::StatusOr<conet::SocketAddress> peer = stream.PeerAddress();
  // A peer chooses its own name (an abstract UNIX name may hold a
  // newline): escaped, it cannot forge a line of its own.
  const std::string line = absl::StrCat(
      "connection from ", peer.ok() ? absl::CHexEscape(peer->ToString()) : "unknown", "\n");
  // A regular file (OpenLog refused anything else): the write neither
  // waits for a reader nor raises SIGPIPE. A full disk loses the line.
  // (A named result: a (void) cast does not quiet warn_unused_result in a
  // coroutine under _FORTIFY_SOURCE.)
  [[maybe_unused]] const ssize_t written = ::write(log_fd, line.data(), line.size());
  co_await conet::examples::Echo(std::move(stream));
}

// Serves one listener until the stop, then drains.
conet::Task<void> ServeListener(conet::StreamListener listener, int log_fd,
                                const conet::ServeOptions* options, std::stop_token stop) {
  conet::ThrottledLog errors("privsep_server worker");
  // Named locals, not temporaries inside co_await: see net/task.h.
  conet::ConnectionHandler handler = [log_fd](conet::StreamSocket stream) {
    return LogThenEcho(log_fd, std::move(stream));
  };
  absl::AnyInvocable<void(const absl::Status&)> on_error = [&errors](const absl::Status& error) {
    errors.Report(error);
  };
  co_await conet::Serve(std::move(listener), std::move(handler), *options, std::move(stop),
                        std::move(on_error));
}

// Obeys the monitor: STOP begins the drain, END ends it, and the monitor
// going away (the channel closed) ends both. Returns only when cancelled.
conet::Task<void> ObeyMonitor(conet::ipc::Channel* channel, std::stop_source* stop,
                              std::stop_source* end_drain) {
  while (!end_drain->stop_requested()) {
    absl::StatusOr<conet::ipc::Message> message = co_await channel->Receive();
    if (!message.ok()) {
      stop->request_stop();
      end_drain->request_stop();
    } else if (message->bytes == "STOP") {
      stop->request_stop();
    } else if (message->bytes == "END") {
      end_drain->request_stop();
    }
  }
  co_await UntilStopped(std::stop_token());  // until the servers are done
}

conet::Task<int> Worker(Flags flags) {
  absl::StatusOr<conet::UniqueFd> fd = conet::ipc::WorkerChannelFd();
  if (!fd.ok()) co_return WorkerFail(fd.status(), 2);
  absl::StatusOr<conet::ipc::UnixSocket> socket = conet::ipc::UnixSocket::Adopt(std::move(*fd));
  if (!socket.ok()) co_return WorkerFail(socket.status(), 1);
  conet::ipc::Channel channel(std::move(*socket));
  absl::StatusOr<conet::ipc::Message> reply = co_await channel.Call("HELLO");
  if (!reply.ok()) co_return WorkerFail(reply.status(), 1);
  if (reply->bytes != "LISTEN" || reply->fds.size() < 2) {
    co_return WorkerFail(absl::DataLossError(absl::StrCat("bad reply \"", reply->bytes, "\"")), 1);
  }
  if (absl::Status locked = LockDown(flags); !locked.ok()) co_return WorkerFail(locked, 1);
  conet::UniqueFd log = std::move(reply->fds.back());
  reply->fds.pop_back();
  std::stop_source stop;
  std::stop_source end_drain;
  conet::ServeOptions options;
  options.drain_timeout = flags.drain_timeout;
  options.end_drain = end_drain.get_token();
  std::vector<conet::Task<void>> servers;
  for (conet::UniqueFd& listening : reply->fds) {
    absl::StatusOr<conet::StreamListener> listener =
        conet::StreamListener::Adopt(std::move(listening));
    if (!listener.ok()) co_return WorkerFail(listener.status(), 1);
    servers.push_back(ServeListener(std::move(*listener), log.fd(), &options, stop.get_token()));
  }
  if (absl::Status ready = co_await channel.Send("READY"); !ready.ok()) {
    co_return WorkerFail(ready, 1);
  }
  co_await conet::WhenAny(conet::WhenAll(std::move(servers)),
                          ObeyMonitor(&channel, &stop, &end_drain));
  co_return 0;
}

void PrintUsage() {
  std::printf(
      "usage: privsep_server --listen=ADDRESS [--user=NAME] [--log=PATH]\n"
      "                      [--sandbox=strict|best-effort|off] [--drain-timeout=DURATION]\n"
      "                      [--upgrade-socket=unix:PATH|unix:@NAME]\n"
      "An echo server split into a privileged monitor and an unprivileged worker.\n"
      "  --listen=ADDRESS  HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME\n"
      "                    (not needed when the socket is inherited)\n"
      "  --user=NAME       the worker's user when started as root (default nobody)\n"
      "  --log=PATH        connection log, a regular file opened by the monitor\n"
      "                    without following symlinks (default %s)\n"
      "  --sandbox=MODE    strict, best-effort (default) or off: the worker's lockdown\n"
      "  --drain-timeout=DURATION  on SIGTERM/SIGINT, time for clients to finish\n"
      "                    (default 10s)\n"
      "  --upgrade-socket=unix:PATH|unix:@NAME  zero-downtime upgrades: take over\n"
      "                    from the instance answering there, then answer there\n"
      "Socket activation (LISTEN_FDS) and readiness (NOTIFY_SOCKET) as systemd does.\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n",
      kDefaultLog);
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "privsep_server", PrintUsage);
  Flags flags;
  const bool worker_role = absl::GetFlag(FLAGS_role) == "worker";
  flags.listen = absl::GetFlag(FLAGS_listen);
  flags.user = absl::GetFlag(FLAGS_user);
  flags.log = absl::GetFlag(FLAGS_log);
  flags.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  flags.upgrade_socket = absl::GetFlag(FLAGS_upgrade_socket);
  flags.sandbox = absl::GetFlag(FLAGS_sandbox);
  absl::StatusOr<conet::ipc::SandboxMode> mode = conet::ipc::ParseSandboxMode(flags.sandbox);
  if (!mode.ok()) return Fail(mode.status(), 2);
  flags.sandbox_mode = *mode;
  if (!worker_role) return Monitor(flags);
  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) return Fail(loop.status(), 1);
  // Only the monitor decides when the worker stops: a Ctrl-C reaches the
  // whole process group, and a service manager's SIGTERM the whole
  // control group; the monitor then tells the worker to drain.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_IGN);
  return (*loop)->BlockOn(Worker(flags));
}
