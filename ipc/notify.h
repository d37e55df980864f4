// File: ipc/notify.h
//
// systemd's readiness protocol (`man sd_notify`): a service started with
// Type=notify tells the service manager how it is doing by sending
// datagrams of newline-separated VAR=VALUE lines to the UNIX socket named
// in NOTIFY_SOCKET. The lines that matter most:
//
//   READY=1            start-up is finished (systemctl start returns now)
//   STOPPING=1         shutdown has begun
//   RELOADING=1        a reload began (Type=notify-reload also wants
//                      MONOTONIC_USEC); READY=1 again when it is done
//   STATUS=...         one line of text for `systemctl status`
//   WATCHDOG=1         still alive (WatchdogSec=: the manager sets
//                      WATCHDOG_USEC and kills a service that stays silent)
//   FDSTORE=1          keep the attached descriptors across a restart
//                      (FileDescriptorStoreMax=), under FDNAME
//
// Notifier reads the environment once, early in main, and sends from any
// loop:
//
//   absl::StatusOr<conet::ipc::Notifier> notifier =
//       conet::ipc::Notifier::FromEnvironment();
//   if (!notifier.ok()) return Fail(notifier.status());
//   ...  // bind, load, start serving
//   absl::Status told = co_await notifier->Ready();
//   // and beside the server, until it stops:
//   absl::Status fed = co_await notifier->RunWatchdog(stop_token);
//
// Not started by systemd (no NOTIFY_SOCKET): the Notifier is disabled, and
// every send is OK at once, without a system call, so a program needs no
// second code path.
//
// Each send opens its own socket, as sd_notify does: close-on-exec and
// non-blocking, registered with the loop the send runs on, connected to
// the manager's socket, closed when the send completes. So a Notifier is a
// plain copyable value, not tied to a loop or thread, and holds no
// descriptor. The socket is connected rather than sent from with sendto:
// an unconnected UNIX datagram socket polls writable even while the
// receiver's queue is full, and each failed send raises a new readiness
// edge, so waiting for room would spin the loop; a connected one is woken
// when the receiver reads (tests/ipc/notify_test.cc,
// AFullQueueIsWaitedOnWithoutBlockingTheLoop).
// A process that sandboxes itself calls KeepConnected first: then every
// send goes out on a duplicate of one socket connected beforehand.
//
// getenv/unsetenv are not thread-safe: call FromEnvironment before starting
// threads.
#ifndef CONET_IPC_NOTIFY_H_
#define CONET_IPC_NOTIFY_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ipc/unix_socket.h"
#include "net/cancellation.h"
#include "net/socket_address.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

// FDNAME_MAX: the longest name systemd keeps stored descriptors under.
inline constexpr size_t kMaxFdNameLength = 255;

// Returns OK if systemd accepts `name` as an FDNAME (1 to 255 printable
// ASCII characters, no ':'), or InvalidArgumentError quoting it and saying
// why not.
absl::Status CheckFdName(absl::string_view name);

class Notifier {
 public:
  // Reads NOTIFY_SOCKET (an absolute path, or "@name" for an abstract
  // socket), WATCHDOG_USEC and WATCHDOG_PID. The watchdog is on when
  // NOTIFY_SOCKET is set, WATCHDOG_USEC is a positive number of
  // microseconds and WATCHDOG_PID is unset or our pid; WATCHDOG_USEC=0 (or
  // unset) leaves it off. Returns InvalidArgumentError, quoting the value,
  // for any other NOTIFY_SOCKET (a relative path, an empty one, vsock:...)
  // and for a WATCHDOG_USEC or WATCHDOG_PID that is not a number in range.
  // NOTIFY_SOCKET unset: a disabled Notifier. No socket is opened here.
  //
  // With `unset_environment` (the default) the three variables are removed,
  // whatever the outcome, so that child processes do not inherit them.
  static absl::StatusOr<Notifier> FromEnvironment(bool unset_environment = true);

  // A disabled Notifier: every send is OK and does nothing.
  Notifier() = default;

  // Reports whether NOTIFY_SOCKET was set (sends go somewhere).
  [[nodiscard]] bool enabled() const noexcept { return address_.has_value(); }
  // Returns the manager's socket; only when enabled().
  [[nodiscard]] const std::optional<SocketAddress>& address() const noexcept { return address_; }
  // Returns how often to send WATCHDOG=1: half of WATCHDOG_USEC, as
  // systemd recommends, when the watchdog is on; else absl::ZeroDuration().
  [[nodiscard]] absl::Duration watchdog_interval() const noexcept { return watchdog_interval_; }

  // Opens one socket now, connected to the manager's, and sends every
  // later message on a duplicate of it instead of opening a socket per
  // send: for a process that sandboxes itself after this call, one that
  // may not create sockets any more or whose Landlock scope refuses
  // abstract sockets outside it (a socket connected before is let
  // through). Copies of the Notifier share the socket. A manager that
  // re-creates its socket later (systemctl daemon-reexec) is not followed:
  // sends then fail with the send's error. Disabled: OK, nothing is
  // opened. Errors: the socket or connect error, naming the address.
  absl::Status KeepConnected();

  // Sends `state` (newline-separated VAR=VALUE lines) as one datagram, with
  // copies of `fds` (which stay the caller's) attached; descriptors go only
  // with an FDSTORE=1 line. co_await yields OK once the datagram is queued
  // at the manager, or the error: InvalidArgumentError before any syscall
  // for an empty state, one holding a NUL (systemd drops those), or fds
  // without FDSTORE=1; else the connect or send error, naming the socket
  // address and the errno (NotFoundError for a path with no socket). A
  // full receive queue is waited on (the loop goes on), until `cancel` or
  // the task's stop token ends the wait. Disabled: OK, without a syscall
  // (the checks above still apply). Runs on the current loop; the Notifier
  // must outlive the co_await. Any number of sends may be in flight.
  Task<absl::Status> Send(std::string state, std::vector<int> fds = {},
                          Cancellation cancel = {}) const;

  // Sends READY=1.
  Task<absl::Status> Ready(Cancellation cancel = {}) const;
  // Sends READY=1 and MAINPID=`main_pid` (a service whose main process is
  // not the one the manager started); a pid below 1 is InvalidArgumentError.
  Task<absl::Status> Ready(pid_t main_pid, Cancellation cancel = {}) const;
  // Sends STOPPING=1.
  Task<absl::Status> Stopping(Cancellation cancel = {}) const;
  // Sends RELOADING=1 with MONOTONIC_USEC, CLOCK_MONOTONIC now in µs (what
  // Type=notify-reload expects); send Ready() when the reload is done.
  Task<absl::Status> Reloading(Cancellation cancel = {}) const;
  // Sends STATUS=`text`, each newline (and NUL) in it replaced by a space,
  // so that the text cannot add variables of its own.
  Task<absl::Status> Status(absl::string_view text, Cancellation cancel = {}) const;
  // Sends MAINPID=`pid`; a pid below 1 is InvalidArgumentError.
  Task<absl::Status> MainPid(pid_t pid, Cancellation cancel = {}) const;
  // Sends WATCHDOG=1.
  Task<absl::Status> Watchdog(Cancellation cancel = {}) const;
  // Sends FDSTORE=1 and FDNAME=`name` with copies of `fds` (at least one),
  // for the manager to keep and hand back on restart (LISTEN_FDS,
  // ipc/listen_fds.h). A name CheckFdName refuses, or no descriptors, is
  // InvalidArgumentError.
  Task<absl::Status> StoreFds(absl::string_view name, std::vector<int> fds,
                              Cancellation cancel = {}) const;
  // Sends FDSTOREREMOVE=1 and FDNAME=`name`: the manager closes the
  // descriptors it keeps under that name. A bad name is InvalidArgumentError.
  Task<absl::Status> RemoveStoredFds(absl::string_view name, Cancellation cancel = {}) const;

  // Sends WATCHDOG=1 at once and then every watchdog_interval(), until
  // `cancel` or the task's stop token ends it. co_await yields OK when it
  // was ended (or at once, without sending, when the watchdog is off), or
  // the error of the first send that failed. The Notifier must outlive it.
  Task<absl::Status> RunWatchdog(Cancellation cancel) const;

 private:
  Notifier(std::optional<SocketAddress> address, absl::Duration watchdog_interval)
      : address_(std::move(address)), watchdog_interval_(watchdog_interval) {}

  // Opens the socket a send goes out on: a duplicate of the kept one, or a
  // new one connected to the manager's.
  Task<absl::StatusOr<UnixSocket>> OpenSocket(Cancellation cancel) const;

  std::optional<SocketAddress> address_;
  absl::Duration watchdog_interval_ = absl::ZeroDuration();
  std::shared_ptr<const UniqueFd> kept_;  // KeepConnected's socket
};

}  // namespace conet::ipc

#endif  // CONET_IPC_NOTIFY_H_
