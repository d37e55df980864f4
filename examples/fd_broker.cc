// examples/fd_broker: a file-opening broker on a SOCK_SEQPACKET UNIX socket.
//
//   fd_broker --listen=unix:PATH|unix:@NAME --root=DIR [--allow-uid=UID]...
//             [--user=NAME] [--sandbox=strict|best-effort|off]
//             [--drain-timeout=DURATION] [--upgrade-socket=unix:PATH|unix:@NAME]
//
// One request per message, one reply per message (docs/programs/fd_broker.md):
//   OPEN <relative path>   -> OK with one read-only descriptor attached,
//                             resolved beneath --root only (openat2 with
//                             RESOLVE_BENEATH), or ERR <reason>
//   DESCRIBE + descriptors -> OK <kind> <kind> ... (file:<size>, dir, pipe,
//                             socket, other); the descriptors are closed
//   anything else          -> ERR <reason>; the connection stays usable
// A client holds at most about 32 unread replies (the rest wait until it
// reads); when the kernel refuses to put a descriptor in flight (the
// broker's uid is at its RLIMIT_NOFILE of them), the client gets
// `ERR too many descriptors in flight, try again later` and the broker
// logs it; the connection stays usable.
// A peer whose uid is not allowed (--allow-uid, repeatable or
// comma-separated; default: the broker's own uid) gets `ERR permission
// denied` and is disconnected before anything is read from it. Prints
// `listening on ADDRESS` once it accepts connections. Socket activation,
// readiness and upgrades as ipc/daemon.h runs them (an inherited socket
// must be a listening SOCK_SEQPACKET UNIX one; --listen is then unused).
// SIGINT or SIGTERM stop it: it stops accepting, lets clients finish for
// up to --drain-timeout (a second signal ends that at once), shuts the
// rest down and exits 0.
// Once it holds its sockets it sandboxes itself (ipc/sandbox.h): as root it
// becomes --user (default nobody), and then it can read only beneath
// --root, make no TCP connection, start no process and make only the
// system calls it needs. It says what was enforced in one stderr line,
// `fd_broker: sandbox: ...`; --sandbox=strict exits 1 when a layer is
// lacking, off applies nothing. Sandboxed, it cannot remove its socket file
// when it stops: the next start reclaims it.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ipc/daemon.h"
#include "ipc/fd_kind.h"
#include "ipc/fd_passing.h"
#include "ipc/open_beneath.h"
#include "ipc/sandbox.h"
#include "ipc/unix_socket.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/listen_options.h"
#include "net/loop_group.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/sync.h"
#include "net/task.h"
#include "net/throttled_log.h"
#include "net/unique_fd.h"
#include "tools/flags.h"

ABSL_FLAG(std::string, listen, "", "unix:PATH or unix:@NAME");
ABSL_FLAG(std::string, root, "", "the directory clients may open files beneath");
ABSL_FLAG(std::vector<std::string>, allow_uid, {},
          "uids allowed to connect; repeatable, or UID,UID,... (default: the broker's own)");
ABSL_FLAG(std::string, user, "nobody", "the user to become when started as root");
ABSL_FLAG(std::string, sandbox, "best-effort", "strict, best-effort or off: the lockdown");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM/SIGINT, how long open clients may take to finish");
ABSL_FLAG(std::string, upgrade_socket, "",
          "unix:PATH or unix:@NAME: take the listener over from an older instance answering "
          "there, and answer there for a newer one");

namespace {

// The longest request; the receive buffer has one byte more, so that a
// request just over the limit is still seen whole and refused by its size.
constexpr size_t kMaxRequestBytes = 4096;

// One reply: its text, and the descriptor OPEN attaches (if any).
struct Reply {
  std::string text;
  conet::UniqueFd fd;
};

Reply Error(absl::string_view reason) { return Reply{absl::StrCat("ERR ", reason), {}}; }

// Opens `path` read-only beneath the root: absolute paths, ".." and
// symlinks leading out, and /proc magic links are refused by the kernel.
Reply Open(absl::string_view path, int root_fd) {
  if (absl::StrContains(path, '\0')) return Error("path holds a NUL byte");
  const std::string c_path(path);
  // O_NONBLOCK (OpenBeneathRaw's) so that opening a FIFO with no writer (or
  // a device that waits for carrier) cannot stall the loop and every other
  // client with it.
  conet::UniqueFd file(conet::ipc::OpenBeneathRaw(root_fd, c_path.c_str()));
  if (!file.is_open()) {
    return Error(errno == EXDEV ? "path escapes root" : std::strerror(errno));
  }
  // ...and clear it again: the flag belongs to the open file description the
  // client shares, which should behave like a plain open().
  const int flags = ::fcntl(file.fd(), F_GETFL);
  if (flags < 0 || ::fcntl(file.fd(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Error(std::strerror(errno));
  }
  return Reply{"OK", std::move(file)};
}

Reply Describe(const std::vector<conet::UniqueFd>& fds) {
  if (fds.empty()) return Error("DESCRIBE needs descriptors");
  std::vector<std::string> kinds;
  for (const conet::UniqueFd& fd : fds) kinds.push_back(conet::ipc::DescribeFd(fd.fd()));
  return Reply{absl::StrCat("OK ", absl::StrJoin(kinds, " ")), {}};
}

Reply Handle(absl::string_view request, const std::vector<conet::UniqueFd>& fds, int root_fd) {
  if (request.size() > kMaxRequestBytes) return Error("request too long");
  absl::ConsumeSuffix(&request, "\n");
  if (absl::ConsumePrefix(&request, "OPEN ")) {
    if (!fds.empty()) return Error("unexpected descriptors");
    return Open(request, root_fd);
  }
  if (request == "DESCRIBE") return Describe(fds);
  return Error("unknown request");
}

// Returns the reason to give a client for a receive that failed on its
// message rather than on the socket (the kernel consumed the message and
// ReceiveFds closed its descriptors, so the connection is still good), or
// nullopt for a socket error.
std::optional<std::string> RefusedMessage(const absl::Status& error) {
  if (absl::IsOutOfRange(error)) return "request too long";  // MSG_TRUNC
  // More than 253 descriptors, or MSG_CTRUNC when the broker has no
  // descriptors left to install them in.
  if (absl::IsResourceExhausted(error)) return "too many descriptors";
  return std::nullopt;
}

// Returns the reply to what one receive gave, or nullopt when the
// connection is finished. `got` is taken by value so that the descriptors
// that came with the request are closed on return, before the reply goes
// out: a client that sent the last copy of something (a pipe's write end)
// may rely on it being closed once it has the reply.
std::optional<Reply> Answer(absl::StatusOr<conet::ipc::ReceivedMessage> got, const char* data,
                            int root_fd) {
  if (!got.ok()) {
    std::optional<std::string> reason = RefusedMessage(got.status());
    if (!reason.has_value()) return std::nullopt;
    return Error(*reason);
  }
  // Zero bytes and no descriptors: end of stream (an empty seqpacket
  // message looks the same, and nobody has a use for one).
  if (got->size == 0 && got->fds.empty()) return std::nullopt;
  return Handle(absl::string_view(data, got->size), got->fds, root_fd);
}

// Bounds what one client may hold in flight: replies it has not read wait
// in its socket's send buffer, and a full buffer makes the next reply wait
// (and the client's later requests with it) until the client reads. At
// about 768 bytes of buffer per small reply (Linux counts the buffer's
// true size, and doubles what SO_SNDBUF asks), 12 KiB holds about 32
// replies, so 32 descriptors: one client that never reads cannot use up
// the descriptors in flight the kernel allows the broker's uid.
constexpr int kReplyBufferBytes = 12 * 1024;

// Returns "client pid P uid U" for the log.
std::string ClientName(const conet::ipc::UnixSocket& client) {
  absl::StatusOr<conet::ipc::Credentials> peer = client.PeerCredentials();
  if (!peer.ok()) return absl::StrCat("client on fd ", client.fd());
  return absl::StrCat("client pid ", peer->pid, " uid ", peer->uid);
}

// Sends `reply`. A descriptor the kernel refuses to put in flight (the
// broker's uid has as many in flight as its RLIMIT_NOFILE: clients that do
// not read their replies) is not a reason to drop the client: it is told,
// and the broker's log says who and why. Returns false once the connection
// is unusable.
conet::Task<bool> SendReply(conet::ipc::UnixSocket* client, Reply reply, conet::ThrottledLog* log) {
  std::vector<int> attached;
  if (reply.fd.is_open()) attached.push_back(reply.fd.fd());
  absl::StatusOr<size_t> sent = co_await client->SendFds(reply.text, attached);
  if (sent.ok()) co_return true;
  if (attached.empty() || !absl::IsResourceExhausted(sent.status())) co_return false;
  log->Report(absl::ResourceExhaustedError(
      absl::StrCat(ClientName(*client), ": ", sent.status().message())));
  const std::string text = "ERR too many descriptors in flight, try again later";
  sent = co_await client->Send(text);
  co_return sent.ok();
}  // reply.fd, the broker's copy of an opened file, is closed here

// The clients one listener's AcceptClients serves, shared with their tasks
// (all on one loop). A socket is in `live` from its accept until its task
// is about to close it, so a descriptor there always names a client's.
struct Clients {
  std::set<int> live;
  conet::AsyncEvent none_live;
};

// Serves one client until it leaves or its socket fails (or is shut down).
conet::Task<void> ServeClient(conet::ipc::UnixSocket client, int root_fd, conet::ThrottledLog* log,
                              std::shared_ptr<Clients> clients) {
  // Best effort: without it the kernel's default (about 270 replies) holds.
  (void)::setsockopt(client.fd(), SOL_SOCKET, SO_SNDBUF, &kReplyBufferBytes,
                     sizeof(kReplyBufferBytes));
  std::array<char, kMaxRequestBytes + 1> buffer;
  while (true) {
    absl::StatusOr<conet::ipc::ReceivedMessage> got =
        co_await client.ReceiveFds(buffer, conet::ipc::kMaxFdsPerMessage);
    std::optional<Reply> reply = Answer(std::move(got), buffer.data(), root_fd);
    if (!reply.has_value()) break;
    if (!co_await SendReply(&client, std::move(*reply), log)) break;
  }
  clients->live.erase(client.fd());
  if (clients->live.empty()) clients->none_live.Set();
}

// How AcceptClients drains once stopped.
struct Drain {
  absl::Duration timeout;
  std::stop_token end;  // ends the drain at once
};

// Accepts and serves clients until `stop`; then closes the listener, lets
// the clients finish for up to drain.timeout (or until drain.end), shuts
// the remaining ones down (their next receive sees end of stream) and
// returns once every client task has ended.
conet::Task<void> AcceptClients(conet::ipc::SeqPacketListener listener, int root_fd, Drain drain,
                                std::stop_token stop) {
  // Lives as long as this task, which outlives every client task it starts.
  conet::ThrottledLog errors("fd_broker");
  auto clients = std::make_shared<Clients>();
  const conet::Cancellation until_stopped(stop);
  while (!stop.stop_requested()) {
    // Refused peers come back as PermissionDeniedError, already answered
    // and closed by the listener: log them and go on.
    absl::StatusOr<conet::ipc::UnixSocket> client = co_await listener.Accept(until_stopped);
    if (!client.ok()) {
      if (absl::IsCancelled(client.status())) break;
      errors.Report(client.status());
      continue;
    }
    clients->live.insert(client->fd());
    conet::EventLoop::Current()->SpawnDetached(
        ServeClient(std::move(*client), root_fd, &errors, clients));
  }
  listener.Close();
  if (clients->live.empty()) co_return;
  clients->none_live.Reset();
  const conet::Cancellation in_time(drain.end, absl::Now() + drain.timeout);
  const absl::Status drained = co_await clients->none_live.Wait(in_time);
  if (drained.ok()) co_return;
  for (int fd : clients->live) ::shutdown(fd, SHUT_RDWR);
  const conet::Cancellation never;
  (void)co_await clients->none_live.Wait(never);
}

// Parses the --allow-uid values (each a uid or a comma-separated list); none
// means the broker's own effective uid, the one SO_PEERCRED reports for a
// client run by the same user.
absl::StatusOr<std::vector<uid_t>> ParseUids(const std::vector<std::string>& values) {
  std::vector<uid_t> uids;
  for (const std::string& value : values) {  // the flag split the commas
    uint32_t uid = 0;
    if (!absl::SimpleAtoi(value, &uid) || uid == static_cast<uint32_t>(-1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--allow-uid=", value, ": expected a uid (or uids, comma-separated)"));
    }
    uids.push_back(static_cast<uid_t>(uid));
  }
  if (uids.empty()) uids.push_back(::geteuid());
  return uids;
}

// Parses --listen: only UNIX addresses will do.
absl::StatusOr<conet::SocketAddress> ParseListen(const std::string& listen) {
  if (listen.empty()) {
    return absl::InvalidArgumentError("--listen=unix:PATH|unix:@NAME is required");
  }
  absl::StatusOr<conet::SocketAddress> address = conet::SocketAddress::Parse(listen);
  if (!address.ok()) return address.status();
  if (!address->is_unix()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen=", listen, ": expected unix:PATH or unix:@NAME"));
  }
  return address;
}

// The listeners to serve: the inherited ones (socket activation, or an
// older instance's), else --listen bound; all on `loop`, with the uid check.
absl::StatusOr<std::vector<conet::ipc::SeqPacketListener>> Listen(
    conet::ipc::Daemon& daemon, const conet::SocketAddress& address,
    std::vector<uid_t> allowed_uids, conet::EventLoop& loop) {
  conet::ListenOptions options;
  options.unix_mode = 0660;  // the owner and its group may connect; the uid check decides
  options.allowed_uids = std::move(allowed_uids);
  options.refusal = "ERR permission denied";
  std::vector<conet::ipc::SeqPacketListener> listeners;
  std::vector<conet::UniqueFd> inherited = daemon.TakeListeners();
  for (conet::UniqueFd& fd : inherited) {
    absl::StatusOr<conet::ipc::SeqPacketListener> adopted =
        conet::ipc::SeqPacketListener::Adopt(std::move(fd), options, &loop);
    if (!adopted.ok()) return adopted.status();
    listeners.push_back(std::move(*adopted));
  }
  if (listeners.empty()) {
    absl::StatusOr<conet::ipc::SeqPacketListener> bound =
        conet::ipc::SeqPacketListener::Bind(address, options, &loop);
    if (!bound.ok()) return bound.status();
    listeners.push_back(std::move(*bound));
  }
  return listeners;
}

// What the broker calls beyond an event-loop worker's: openat2, for
// OPEN (Landlock then keeps it beneath --root whatever the path).
std::vector<std::string> BrokerSystemCalls() {
  std::vector<std::string> calls = conet::ipc::EventLoopSystemCalls();
  calls.push_back("openat2");
  return calls;
}

// The lockdown, in two steps around the start of the loop's thread: the
// sandbox before it (so the thread inherits it), no new processes once it
// runs (RLIMIT_NPROC counts threads). Prints the report after the second.
class Lockdown {
 public:
  Lockdown(std::string user, std::string root, int root_fd, conet::ipc::SandboxMode mode)
      : user_(std::move(user)), root_(std::move(root)), root_fd_(root_fd), mode_(mode) {}

  absl::Status Apply() {
    conet::ipc::SandboxPolicy policy = conet::ipc::WorkerSandbox();
    policy.user = user_;
    policy.read_only_paths = {root_};
    policy.system_calls = BrokerSystemCalls();
    policy.no_new_processes = false;  // ThreadsRunning sets it
    absl::StatusOr<conet::ipc::SandboxReport> report = conet::ipc::ApplySandbox(policy, mode_);
    if (!report.ok()) return report.status();
    report_ = std::move(*report);
    return absl::OkStatus();
  }

  absl::Status ThreadsRunning() {
    if (absl::Status forbidden = conet::ipc::ForbidNewProcesses(mode_, &report_); !forbidden.ok()) {
      return forbidden;
    }
    std::fprintf(stderr, "fd_broker: %s\n", report_.ToString().c_str());
    WarnIfRootIsClosed();
    return absl::OkStatus();
  }

  // A root the new user may not search (a directory only root may enter)
  // fails every OPEN: say so once, at start.
  void WarnIfRootIsClosed() const {
    struct stat st;
    if (::fstatat(root_fd_, ".", &st, 0) == 0 || errno != EACCES) return;
    std::fprintf(stderr,
                 "fd_broker: warning: --root=%s: uid %u may not search it (%s); every OPEN "
                 "fails until it may\n",
                 absl::CHexEscape(root_).c_str(), static_cast<unsigned>(::geteuid()),
                 std::strerror(EACCES));
  }

 private:
  std::string user_;
  std::string root_;
  int root_fd_;
  conet::ipc::SandboxMode mode_;
  conet::ipc::SandboxReport report_;
};

void PrintUsage() {
  std::printf(
      "usage: fd_broker --listen=unix:PATH|unix:@NAME --root=DIR [--allow-uid=UID]...\n"
      "                 [--user=NAME] [--sandbox=strict|best-effort|off]\n"
      "                 [--drain-timeout=DURATION] [--upgrade-socket=unix:PATH|unix:@NAME]\n"
      "Opens files beneath DIR for clients of a SOCK_SEQPACKET UNIX socket.\n"
      "  --listen=ADDRESS  unix:PATH or unix:@NAME (required)\n"
      "  --root=DIR        the directory requests are resolved beneath (required)\n"
      "  --allow-uid=UID   a uid allowed to connect; repeatable, or UID,UID,...\n"
      "                    (default: the broker's own uid)\n"
      "  --user=NAME       the user to become when started as root (default nobody)\n"
      "  --sandbox=MODE    strict, best-effort (default) or off: the lockdown once\n"
      "                    listening (reads only beneath DIR; see the docs)\n"
      "  --drain-timeout=DURATION  on SIGTERM/SIGINT, time for clients to finish\n"
      "                    (default 10s)\n"
      "  --upgrade-socket=unix:PATH|unix:@NAME  zero-downtime upgrades: take over\n"
      "                    from the instance answering there, then answer there\n"
      "Socket activation (LISTEN_FDS, a SOCK_SEQPACKET UNIX listener; --listen is\n"
      "then unused) and readiness (NOTIFY_SOCKET) as systemd does.\n"
      "Requests: \"OPEN <relative path>\", \"DESCRIBE\" with descriptors attached.\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
}

int UsageError(const absl::Status& error) {
  return conet::tools::UsageError("fd_broker", error.message());
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "fd_broker: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  conet::tools::ParseFlagsOrExit(argc, argv, "fd_broker", PrintUsage);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const std::string root_dir = absl::GetFlag(FLAGS_root);
  const std::vector<std::string> uid_values = absl::GetFlag(FLAGS_allow_uid);
  absl::StatusOr<conet::SocketAddress> address = ParseListen(listen);
  if (!address.ok()) return UsageError(address.status());
  if (root_dir.empty()) return UsageError(absl::InvalidArgumentError("--root=DIR is required"));
  absl::StatusOr<std::vector<uid_t>> allowed_uids = ParseUids(uid_values);
  if (!allowed_uids.ok()) return UsageError(allowed_uids.status());
  absl::StatusOr<conet::ipc::SandboxMode> mode =
      conet::ipc::ParseSandboxMode(absl::GetFlag(FLAGS_sandbox));
  if (!mode.ok()) return UsageError(mode.status());

  // Opened once: every request resolves beneath this descriptor, so renaming
  // or replacing DIR later does not move what clients can reach. Declared
  // before the loops, so it outlives every task that borrows it.
  const conet::UniqueFd root_fd(::open(root_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.is_open())
    return Fail(absl::StrCat("--root=", root_dir, ": ", std::strerror(errno)));

  Lockdown lockdown(absl::GetFlag(FLAGS_user), root_dir, root_fd.fd(), *mode);

  // The loop's thread inherits this mask; only the daemon's watcher sees them.
  (void)conet::BlockStopSignals();
  absl::StatusOr<std::unique_ptr<conet::ipc::Daemon>> daemon = conet::ipc::Daemon::Start(
      {.program = "fd_broker",
       .kind = {.type = SOCK_SEQPACKET, .unix_only = true},
       .upgrade_socket = absl::GetFlag(FLAGS_upgrade_socket),
       .lock_down = [&lockdown] { return lockdown.Apply(); },
       .threads_running = [&lockdown] { return lockdown.ThreadsRunning(); }});
  if (!daemon.ok()) return Fail(std::string(daemon.status().message()));

  absl::StatusOr<std::unique_ptr<conet::LoopGroup>> group = conet::LoopGroup::Create(1);
  if (!group.ok()) return Fail(std::string(group.status().message()));
  absl::StatusOr<std::vector<conet::ipc::SeqPacketListener>> listeners =
      Listen(**daemon, *address, std::move(*allowed_uids), (*group)->loop(0));
  if (!listeners.ok()) return Fail(std::string(listeners.status().message()));
  std::vector<std::string> addresses;
  std::vector<int> fds;  // what a successor is handed
  for (const conet::ipc::SeqPacketListener& listener : *listeners) {
    addresses.push_back(listener.address().ToString());
    fds.push_back(listener.fd());
  }
  const int root = root_fd.fd();
  const Drain drain{absl::GetFlag(FLAGS_drain_timeout), (*daemon)->end_drain_token()};
  absl::Status served = (*daemon)->Serve(
      **group, addresses, fds, static_cast<int>(listeners->size()),
      [&](int index, std::stop_token stop) {
        return AcceptClients(std::move((*listeners)[index]), root, drain, std::move(stop));
      });
  if (!served.ok()) return Fail(std::string(served.message()));
  return 0;
}
