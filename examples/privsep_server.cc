// examples/privsep_server: an echo server split into a privileged monitor
// and an unprivileged worker, the OpenSSH pattern.
//
//   privsep_server --listen=ADDRESS [--user=nobody]
//                  [--log=PATH (default /var/log/privsep_server.log)]
//
// The monitor keeps its privileges and does only what needs them: it binds
// the listening socket, opens the log, and starts the worker (this same
// binary, `--role=worker`) with one end of a seqpacket socketpair. The worker
// sets PR_SET_NO_NEW_PRIVS, drops to --user when started as root, asks the
// monitor over the channel for what it cannot get itself, and serves echo.
//
// Channel protocol (ipc::Channel messages, ASCII):
//   worker -> monitor  Call HELLO   monitor -> worker  Reply LISTEN + [listener, log]
//   worker -> monitor  Send READY   (no reply; the monitor prints
//                                   `listening on ADDRESS`)
//   anything else                   ERR unknown request (a Reply to a Call)
// SIGINT/SIGTERM to the monitor stop the worker and exit 0; if the worker
// dies on its own, the monitor exits 1. Started by systemd with Type=notify
// (NOTIFY_SOCKET set), the monitor sends READY=1 once the worker serves and
// STOPPING=1 when asked to stop.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "examples/echo_session.h"
#include "ipc/channel.h"
#include "ipc/notify.h"
#include "ipc/spawn_worker.h"
#include "ipc/unix_socket.h"
#include "net/async_fd.h"
#include "net/event_loop.h"
#include "net/regular_file.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/when_any.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "", "HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME");
ABSL_FLAG(std::string, user, "nobody", "the worker's user when started as root");
// Where the connection log goes unless --log says otherwise: a daemon's log
// lives at a fixed absolute place, in a directory only root may write,
// never relative to wherever it happened to be started.
constexpr char kDefaultLog[] = "/var/log/privsep_server.log";
ABSL_FLAG(std::string, log, kDefaultLog, "connection log");
// The monitor starts this binary again with --role=worker.
ABSL_FLAG(std::string, role, "monitor", "monitor or worker (internal)");

namespace {

struct Flags {
  std::string listen;
  std::string user;
  std::string log;
};

int Fail(const absl::Status& status, int code) {
  std::fprintf(stderr, "privsep_server: %s\n", std::string(status.message()).c_str());
  return code;
}

// --- Monitor ---------------------------------------------------------------

// Awaits a notification to systemd; one that fails is reported, not fatal.
conet::Task<void> Tell(conet::Task<absl::Status> notification) {
  const absl::Status told = co_await std::move(notification);
  if (!told.ok()) std::fprintf(stderr, "privsep_server: %s\n", std::string(told.message()).c_str());
}

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

// Answers `request` (alive until the co_await completes): with a Reply if
// the worker Called, else with a message.
conet::Task<absl::Status> Answer(conet::ipc::Channel* channel, const conet::ipc::Message* request,
                                 std::string bytes, std::vector<int> fds) {
  if (request->request_id == 0) co_return co_await channel->Send(std::move(bytes), std::move(fds));
  co_return co_await channel->Reply(*request, std::move(bytes), std::move(fds));
}

// Answers the worker's requests until it goes away.
conet::Task<absl::Status> ServeWorker(conet::ipc::Channel* channel,
                                      const conet::StreamListener* listener, int log_fd,
                                      const conet::ipc::Notifier* notifier) {
  while (true) {
    absl::StatusOr<conet::ipc::Message> request = co_await channel->Receive();
    if (!request.ok()) co_return request.status();
    absl::Status replied;
    if (request->bytes == "HELLO") {
      // Named: GCC 12 mishandles a braced list inside a co_await expression.
      std::vector<int> fds = {listener->fd(), log_fd};
      replied = co_await Answer(channel, &*request, "LISTEN", std::move(fds));
    } else if (request->bytes == "READY") {
      std::printf("listening on %s\n", listener->address().ToString().c_str());
      std::fflush(stdout);
      co_await Tell(notifier->Ready());
    } else {
      std::vector<int> none;
      replied = co_await Answer(channel, &*request, "ERR unknown request", std::move(none));
    }
    if (!replied.ok()) co_return replied;
  }
}

conet::Task<int> Monitor(Flags flags, conet::ipc::Notifier notifier) {
  absl::StatusOr<conet::SocketAddress> address = conet::SocketAddress::Parse(flags.listen);
  if (!address.ok()) co_return Fail(address.status(), 2);
  absl::StatusOr<conet::StreamListener> listener = conet::StreamListener::Bind(*address);
  if (!listener.ok()) co_return Fail(listener.status(), 1);
  absl::StatusOr<conet::UniqueFd> log = OpenLog(flags.log);
  if (!log.ok()) co_return Fail(log.status(), 1);
  absl::StatusOr<conet::ipc::Worker> worker = conet::ipc::SpawnWorker(
      {conet::ipc::SelfExecutable(), "--role=worker", "--user=" + flags.user});
  if (!worker.ok()) co_return Fail(worker.status(), 1);
  conet::ipc::Channel channel(std::move(worker->channel()));

  auto ended = co_await conet::WhenAny(ServeWorker(&channel, &*listener, log->fd(), &notifier),
                                       conet::WaitForStopSignal());
  if (ended.index == 1) {  // asked to stop: stop the worker first
    co_await Tell(notifier.Stopping());
    (void)worker->Kill(SIGTERM);
    absl::StatusOr<int> status = co_await worker->Wait(conet::Within(absl::Seconds(5)));
    if (!status.ok()) (void)worker->Kill(SIGKILL);
    co_return 0;
  }
  absl::StatusOr<int> status = co_await worker->Wait(conet::Within(absl::Seconds(5)));
  std::fprintf(stderr, "privsep_server: the worker ended (%s)\n",
               status.ok() ? absl::StrCat("status ", *status).c_str()
                           : std::string(status.status().message()).c_str());
  co_return 1;
}

// --- Worker ----------------------------------------------------------------

// Gives up every privilege: no new ones through exec, and, as root, the
// identity of `user` (groups first, then gid, then uid).
absl::Status DropPrivileges(const std::string& user) {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return absl::ErrnoToStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  if (::geteuid() != 0) return absl::OkStatus();
  const passwd* pw = ::getpwnam(user.c_str());
  if (pw == nullptr) return absl::NotFoundError(absl::StrCat("no user \"", user, "\""));
  if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 || ::setuid(pw->pw_uid) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("drop privileges to ", user));
  }
  if (::setuid(0) == 0) return absl::InternalError("could regain root after dropping it");
  return absl::OkStatus();
}

conet::Task<absl::Status> AcceptLoop(conet::StreamListener* listener, int log_fd) {
  while (true) {
    absl::StatusOr<conet::StreamSocket> stream = co_await listener->Accept();
    if (!stream.ok()) {
      if (absl::IsCancelled(stream.status())) co_return stream.status();
      std::fprintf(stderr, "privsep_server worker: %s\n",
                   std::string(stream.status().message()).c_str());
      continue;
    }
    absl::StatusOr<conet::SocketAddress> peer = stream->PeerAddress();
    // A peer chooses its own name (an abstract UNIX name may hold a
    // newline): escaped, it cannot forge a line of its own.
    const std::string line = absl::StrCat(
        "connection from ", peer.ok() ? absl::CHexEscape(peer->ToString()) : "unknown", "\n");
    // A regular file (OpenLog refused anything else): the write neither
    // waits for a reader nor raises SIGPIPE. A full disk loses the line.
    (void)::write(log_fd, line.data(), line.size());
    conet::EventLoop::Current()->SpawnDetached(conet::examples::Echo(std::move(*stream)));
  }
}

// Ends when the monitor closes the channel (it is gone, so are we).
conet::Task<absl::Status> WatchMonitor(conet::ipc::Channel* channel) {
  absl::StatusOr<conet::ipc::Message> message = co_await channel->Receive();
  co_return message.status();
}

conet::Task<int> Worker(Flags flags) {
  absl::StatusOr<conet::UniqueFd> fd = conet::ipc::WorkerChannelFd();
  if (!fd.ok()) co_return Fail(fd.status(), 2);
  absl::StatusOr<conet::ipc::UnixSocket> socket = conet::ipc::UnixSocket::Adopt(std::move(*fd));
  if (!socket.ok()) co_return Fail(socket.status(), 1);
  conet::ipc::Channel channel(std::move(*socket));
  absl::StatusOr<conet::ipc::Message> reply = co_await channel.Call("HELLO");
  if (!reply.ok()) co_return Fail(reply.status(), 1);
  if (reply->bytes != "LISTEN" || reply->fds.size() != 2) {
    co_return Fail(absl::DataLossError(absl::StrCat("bad reply \"", reply->bytes, "\"")), 1);
  }
  if (absl::Status dropped = DropPrivileges(flags.user); !dropped.ok()) {
    co_return Fail(dropped, 1);
  }
  absl::StatusOr<conet::StreamListener> listener =
      conet::StreamListener::Adopt(std::move(reply->fds[0]));
  if (!listener.ok()) co_return Fail(listener.status(), 1);
  conet::UniqueFd log = std::move(reply->fds[1]);
  if (absl::Status ready = co_await channel.Send("READY"); !ready.ok()) {
    co_return Fail(ready, 1);
  }
  co_await conet::WhenAny(AcceptLoop(&*listener, log.fd()), WatchMonitor(&channel));
  co_return 0;
}

void PrintUsage() {
  std::printf(
      "usage: privsep_server --listen=ADDRESS [--user=NAME] [--log=PATH]\n"
      "An echo server split into a privileged monitor and an unprivileged worker.\n"
      "  --listen=ADDRESS  HOST:PORT, [IPV6]:PORT, unix:PATH or unix:@NAME\n"
      "  --user=NAME       the worker's user when started as root (default nobody)\n"
      "  --log=PATH        connection log, a regular file opened by the monitor\n"
      "                    without following symlinks (default %s)\n"
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

  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) return Fail(loop.status(), 1);
  if (worker_role) {
    // Only the monitor decides when the worker stops: a Ctrl-C reaches the
    // whole process group, and the monitor then stops the worker itself.
    ::signal(SIGINT, SIG_IGN);
    return (*loop)->BlockOn(Worker(flags));
  }
  if (flags.listen.empty()) return Fail(absl::InvalidArgumentError("--listen is required"), 2);
  // NOTIFY_SOCKET, read (and unset) while this is the only thread.
  absl::StatusOr<conet::ipc::Notifier> notifier = conet::ipc::Notifier::FromEnvironment();
  if (!notifier.ok()) return Fail(notifier.status(), 2);
  // Seen only through the signalfd in WaitForStopSignal.
  conet::BlockStopSignals();
  return (*loop)->BlockOn(Monitor(flags, *notifier));
}
