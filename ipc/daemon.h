// File: ipc/daemon.h
//
// The life cycle of a daemon that listens, as operators run one: socket
// activation, readiness and watchdog (sd_notify), a graceful drain on
// SIGTERM/SIGINT (a second one ends it at once), and zero-downtime upgrades
// through an upgrade socket (ipc/handoff.h).
//
//   absl::StatusOr<std::unique_ptr<conet::ipc::Daemon>> daemon =
//       conet::ipc::Daemon::Start({.program = "echo_server",
//                                  .upgrade_socket = absl::GetFlag(FLAGS_upgrade_socket)});
//   // The inherited listeners, or --listen bound on each loop:
//   absl::StatusOr<std::vector<conet::StreamListener>> listeners =
//       (*daemon)->ListenStream(address, group);
//   options.end_drain = (*daemon)->end_drain_token();   // conet::ServeOptions
//   absl::Status served = (*daemon)->Serve(group, addresses, listener_fds, count,
//       [&](int index, std::stop_token stop) { return ServeOne(index, stop); });
//
// Start, early in main before any thread, takes what the environment gives:
// LISTEN_FDS from the service manager (each descriptor validated), or, with
// an upgrade socket, the descriptors of an older instance answering there.
// Serve then runs the servers and, on the first loop:
//   - prints `listening on ADDRESS` once per distinct address, in order;
//   - sends READY=1 (with MAINPID= after a takeover) and a STATUS= line when
//     NOTIFY_SOCKET is set, and WATCHDOG=1 every half WATCHDOG_USEC;
//   - after a takeover, tells the older instance it is ready;
//   - answers successors at the upgrade socket (bound here, mode 0600, when
//     no older instance handed it over), offering them the listeners and the
//     upgrade socket itself;
//   - stops on SIGTERM/SIGINT (sending STOPPING=1) or once a successor is
//     ready (sending nothing: the successor is the main process now), and
//     ends the drain at once on a second signal.
// With DaemonOptions::wait_for_ready, all of this waits until the servers
// say they are ready (MarkReady): a monitor whose worker serves does.
// It returns when every server task has returned. The caller blocks
// SIGTERM and SIGINT first (BlockStopSignals in net/signals.h), before
// any thread starts.
#ifndef CONET_IPC_DAEMON_H_
#define CONET_IPC_DAEMON_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ipc/handoff.h"
#include "ipc/listen_fds.h"
#include "ipc/notify.h"
#include "net/listen_options.h"
#include "net/loop_group.h"
#include "net/signals.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/sync.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

struct DaemonOptions {
  // The program's name, for what it writes to stderr.
  std::string program;
  // The listening sockets it serves (inherited ones are checked against it).
  ListenerKind kind;
  // `unix:PATH` or `unix:@NAME`, or empty: no upgrades.
  std::string upgrade_socket;
  // How long each step of a handoff may take.
  absl::Duration handoff_timeout = absl::Seconds(10);
  // False: Serve announces at once (its servers accept as soon as they
  // run). True: it announces only once MarkReady is called, for servers
  // that get going elsewhere (in a worker process). If every server task
  // returns before that, nothing is announced and an older instance that
  // handed over keeps serving; a stop signal before it stops the servers.
  bool wait_for_ready = false;
  // For a daemon that sandboxes itself (ipc/sandbox.h). Serve calls
  // lock_down on its own thread once everything it opens is open (the
  // upgrade socket bound, the signal watcher made, the readiness socket
  // connected: Notifier::KeepConnected) and before any loop's thread
  // starts, so that every thread inherits the sandbox; then
  // threads_running, once every loop's thread runs and none will start
  // again (RLIMIT_NPROC 0, which counts threads, goes there:
  // ForbidNewProcesses). An error from either is returned by Serve, and
  // nothing is announced (an older instance that handed over goes on
  // serving). Successors are still checked against the uid the daemon
  // started as, the one they start as, whatever identity the sandbox takes.
  absl::AnyInvocable<absl::Status()> lock_down;
  absl::AnyInvocable<absl::Status()> threads_running;
};

class Daemon {
 public:
  // Reads the environment and takes over from an older instance if one
  // answers at the upgrade socket. Errors: a bad environment, an inherited
  // descriptor that is not a listener of `options.kind` (the error names
  // it), an older instance refusing or of another uid, a bad address.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(DaemonOptions options);

  // Returns the inherited listening sockets, in order (empty: bind your
  // own); once.
  std::vector<UniqueFd> TakeListeners();
  // Returns the stream listeners to serve: the inherited ones, adopted
  // onto the loops of `group` in turn (listener i on loop i % size), or,
  // when none were inherited, BindForEachLoop(address, group, options)
  // (net/server.h).
  absl::StatusOr<std::vector<StreamListener>> ListenStream(const SocketAddress& address,
                                                           LoopGroup& group,
                                                           const ListenOptions& options = {});
  // Returns "activated", "handed over" or "bound": where the listeners
  // came from (after TakeListeners, as before it).
  const char* origin() const;
  // The stop the servers obey, and the one that ends their drain.
  std::stop_token stop_token() const { return stop_.get_token(); }
  std::stop_token end_drain_token() const { return end_drain_.get_token(); }
  // With DaemonOptions::wait_for_ready: the servers accept connections now.
  // From any thread; later calls do nothing.
  void MarkReady() { ready_.Set(); }

  // Runs `count` server tasks, task i on loop i % group.size(), with the
  // life cycle above, and returns once all of them have returned (then
  // the loops are stopped and joined). `listener_fds` are what a successor
  // is handed (they must stay open while the servers run); `addresses` are
  // printed. Returns an error, before serving, if the upgrade socket
  // cannot be bound.
  absl::Status Serve(LoopGroup& group, const std::vector<std::string>& addresses,
                     std::vector<int> listener_fds, int count,
                     absl::AnyInvocable<Task<void>(int, std::stop_token)> serve);

 private:
  explicit Daemon(DaemonOptions options) : options_(std::move(options)) {}
  absl::Status Adopt(std::vector<ListenedFd> activated);
  absl::Status TakeOver(const SocketAddress& upgrade);
  absl::Status AdoptHandedOver(std::vector<NamedFd> fds);
  Task<void> Lifecycle(std::vector<std::string> addresses, std::vector<int> listener_fds,
                       std::stop_token served);
  Task<bool> BecameReady(std::stop_token served);
  Task<void> AbandonTakeover(std::string reason);
  Task<void> RunUntilStopped(std::vector<int> listener_fds, std::stop_token served);
  Task<void> DrainUntilServed(std::stop_token served);
  Task<void> PingWatchdog(std::stop_token served);
  Task<bool> WaitForSuccessor(std::vector<int> listener_fds);
  Task<void> Announce(std::vector<std::string> addresses);
  // Runs lock_down (after connecting the Notifier), closing what Serve
  // opened if it fails.
  absl::Status LockDown();
  // Runs threads_running; on an error the servers are stopped at once.
  absl::Status ThreadsRunning();

  DaemonOptions options_;
  Notifier notifier_;
  std::vector<UniqueFd> listeners_;
  const char* origin_ = "bound";
  std::optional<Takeover> takeover_;
  UniqueFd handed_upgrade_;  // the upgrade socket an older instance handed over
  SeqPacketListener upgrade_listener_;
  SignalWatcher signals_;  // SIGTERM, SIGINT (blocked by the caller)
  std::stop_source stop_;
  std::stop_source end_drain_;
  AsyncEvent ready_;       // MarkReady
  uid_t started_uid_ = 0;  // geteuid() in Start
  // Set once the loops' threads run (and threads_running returned);
  // start_failed_ is written before, and read after.
  AsyncEvent threads_started_;
  bool start_failed_ = false;
};

}  // namespace conet::ipc

#endif  // CONET_IPC_DAEMON_H_
