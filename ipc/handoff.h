// File: ipc/handoff.h
//
// Zero-downtime upgrade: a running instance of a program hands its listening
// sockets (and any other descriptors it names) to a newer instance over a
// UNIX seqpacket socket, the upgrade socket. Both hold the same listening
// sockets for a moment, so no connection attempt is ever refused: the older
// one stops accepting only once the newer one accepts, and closing its
// descriptors then resets nothing (the kernel's queue belongs to the socket,
// which the newer one keeps open).
//
//   // The newer instance, early in main:
//   absl::StatusOr<std::optional<conet::ipc::Takeover>> takeover =
//       co_await conet::ipc::Takeover::Begin(upgrade_address, conet::Within(timeout));
//   if (!takeover.ok()) return Fail(takeover.status());
//   if (takeover->has_value()) {
//     // adopt (*takeover)->fds(), start accepting, then:
//     co_await (*takeover)->Ready();
//   }
//   // The older instance, while it serves:
//   absl::Status handed = co_await conet::ipc::AnswerSuccessors(upgrade_listener, offer, {});
//   // OK: a successor accepts now; stop accepting and drain.
//
// The protocol, one ASCII message each way at a time:
//   newer -> older   UPGRADE <pid>
//   older -> newer   HANDOFF <name> <name> ...   one descriptor per name
//                    (or ERR <reason>: it refused)
//   newer -> older   READY                       it accepts on them now
//                    (or ERR <reason>, or it goes away: the older goes on)
// Each side checks with SO_PEERCRED that the other runs as its own
// effective uid (or, for successors, AnswerOptions::successor_uid) before
// anything else; a peer of another uid is refused.
// A successor that dies, stalls past the timeout, or answers anything but
// READY leaves the older instance serving, and answering the next one.
#ifndef CONET_IPC_HANDOFF_H_
#define CONET_IPC_HANDOFF_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ipc/unix_socket.h"
#include "net/cancellation.h"
#include "net/socket_address.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

// A descriptor that travels with a name ("listen", "upgrade", "log", ...).
struct NamedFd {
  std::string name;
  UniqueFd fd;
};

// A descriptor offered to a successor: it stays the offerer's.
struct OfferedFd {
  std::string name;
  int fd = -1;
};

// Reports whether `name` may name a handed-over descriptor: 1 to 64 of
// [A-Za-z0-9_.-].
bool IsValidFdName(const std::string& name);

// The newer instance's side of a handoff.
class Takeover {
 public:
  // Connects to the upgrade socket at `address` and asks the instance
  // answering there for its descriptors. co_await yields std::nullopt when
  // nobody answers (no socket there, or connection refused), the Takeover
  // with the descriptors, or an error: a peer of another uid, a refusal,
  // a malformed answer, or `cancel` ending the wait (give it a deadline).
  // The descriptors are close-on-exec; none is checked here: validate each
  // (ValidateListener in ipc/listen_fds.h) before adopting it.
  static Task<absl::StatusOr<std::optional<Takeover>>> Begin(SocketAddress address,
                                                             Cancellation cancel = {});

  Takeover(Takeover&&) = default;
  Takeover& operator=(Takeover&&) = default;

  // Returns the descriptors, in the order the older instance sent them.
  std::vector<NamedFd>& fds() { return fds_; }
  // Returns the older instance's pid (SO_PEERCRED).
  pid_t older_pid() const { return older_pid_; }

  // Tells the older instance that this one accepts now: it stops accepting
  // and drains. Call it from a loop (the connection is registered with the
  // current loop on first use). co_await yields OK or the send's error.
  Task<absl::Status> Ready(Cancellation cancel = {});
  // Tells the older instance the takeover failed (it goes on serving).
  Task<absl::Status> Abandon(std::string reason, Cancellation cancel = {});

 private:
  Takeover(UniqueFd connection, pid_t older_pid, std::vector<NamedFd> fds)
      : connection_(std::move(connection)), older_pid_(older_pid), fds_(std::move(fds)) {}
  Task<absl::Status> Say(std::string message, Cancellation cancel);

  UniqueFd connection_;
  pid_t older_pid_ = 0;
  std::vector<NamedFd> fds_;
};

struct AnswerOptions {
  // How long a successor may take from its UPGRADE to its READY.
  absl::Duration timeout = absl::Seconds(10);
  // Told of each successor that failed (and why); the answering goes on.
  absl::AnyInvocable<void(const absl::Status&)> on_failure;
  // Told when a successor (its pid) asked and was sent the descriptors.
  absl::AnyInvocable<void(pid_t)> on_handing_over;
  // The uid a successor must run as; unset: this process's effective uid.
  // A process that changed its identity after it started (a sandbox's)
  // names the uid it started as, the one its successors start as.
  std::optional<uid_t> successor_uid;
};

// Answers successors at `listener`, one at a time: for each, checks its uid,
// sends it copies of `offer` (at most 253, which stay the caller's and
// must stay open), and waits for its READY. co_await yields OK once a
// successor is ready: from then on this process leaves the socket files
// of the offered UNIX sockets in place (see LeaveSocketFile), and should
// stop accepting and drain. A successor that fails is reported to
// `options.on_failure` and the next one is answered. Yields CancelledError
// (or DeadlineExceeded) when `cancel` ends it, or the listener's error.
Task<absl::Status> AnswerSuccessors(SeqPacketListener& listener, std::vector<OfferedFd> offer,
                                    AnswerOptions options, Cancellation cancel = {});

}  // namespace conet::ipc

#endif  // CONET_IPC_HANDOFF_H_
