#include "ipc/notify.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <span>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "ipc/unix_socket.h"
#include "net/bytes.h"
#include "net/sockets/socket_ops.h"
#include "net/timer.h"

namespace conet::ipc {
namespace {

constexpr char kSocketVariable[] = "NOTIFY_SOCKET";
constexpr char kUsecVariable[] = "WATCHDOG_USEC";
constexpr char kPidVariable[] = "WATCHDOG_PID";

// Returns a copy of the variable (getenv's pointer dies with unsetenv).
std::optional<std::string> GetVariable(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Returns `variable="value"`, the value C-escaped, for error messages.
std::string Quoted(const char* variable, absl::string_view value) {
  return absl::StrCat(variable, "=\"", absl::CHexEscape(value), "\"");
}

// Parses NOTIFY_SOCKET: "/path" or "@abstract".
absl::StatusOr<SocketAddress> ParseSocket(const std::string& value) {
  if (!absl::StartsWith(value, "/") && !absl::StartsWith(value, "@")) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(kSocketVariable, value),
                     ": expected an absolute path or @name (other kinds, such as vsock:, are not "
                     "supported)"));
  }
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(absl::StrCat("unix:", value));
  if (!address.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(kSocketVariable, value), ": ", address.status().message()));
  }
  return address;
}

// Parses `value` of `variable` as an integer in [min, max].
absl::StatusOr<int64_t> ParseNumber(const char* variable, const std::string& value, int64_t min,
                                    int64_t max) {
  int64_t number = 0;
  if (!absl::SimpleAtoi(value, &number) || number < min || number > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(Quoted(variable, value), ": expected a number from ", min, " to ", max));
  }
  return number;
}

// Returns half of WATCHDOG_USEC when the watchdog is meant for us, else zero.
absl::StatusOr<absl::Duration> WatchdogInterval() {
  const std::optional<std::string> usec = GetVariable(kUsecVariable);
  if (!usec.has_value()) return absl::ZeroDuration();
  absl::StatusOr<int64_t> micros =
      ParseNumber(kUsecVariable, *usec, 0, std::numeric_limits<int64_t>::max());
  if (!micros.ok()) return micros.status();
  const std::optional<std::string> pid = GetVariable(kPidVariable);
  if (pid.has_value()) {
    absl::StatusOr<int64_t> number = ParseNumber(kPidVariable, *pid, 1, INT_MAX);
    if (!number.ok()) return number.status();
    if (*number != ::getpid()) return absl::ZeroDuration();  // another process's
  }
  return absl::Microseconds(*micros) / 2;
}

// What the environment says.
struct Environment {
  std::optional<SocketAddress> address;  // none: disabled
  absl::Duration watchdog_interval;
};

// Reads the three variables; leaves the environment be.
absl::StatusOr<Environment> ReadEnvironment() {
  absl::StatusOr<absl::Duration> interval = WatchdogInterval();
  if (!interval.ok()) return interval.status();
  const std::optional<std::string> socket = GetVariable(kSocketVariable);
  if (!socket.has_value()) return Environment{std::nullopt, absl::ZeroDuration()};
  absl::StatusOr<SocketAddress> address = ParseSocket(*socket);
  if (!address.ok()) return address.status();
  return Environment{*address, *interval};
}

// Checks what systemd would drop or close unread: an empty datagram, a
// NUL in it, descriptors without FDSTORE=1.
absl::Status CheckState(absl::string_view state, size_t fds) {
  if (state.empty()) return absl::InvalidArgumentError("sd_notify: empty state");
  if (absl::StrContains(state, absl::string_view("\0", 1))) {
    return absl::InvalidArgumentError(
        absl::StrCat("sd_notify: state \"", absl::CHexEscape(state), "\" holds a NUL"));
  }
  if (fds == 0) return absl::OkStatus();
  for (absl::string_view line : absl::StrSplit(state, '\n')) {
    if (line == "FDSTORE=1") return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("sd_notify: ", fds, " descriptors with state \"", absl::CHexEscape(state),
                   "\", which has no FDSTORE=1 line (the manager would close them)"));
}

absl::Status CheckPid(pid_t pid) {
  if (pid >= 1) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("sd_notify: MAINPID=", pid, " is not a pid"));
}

// A Task that yields `status` at once (a refusal found before sending).
Task<absl::Status> Refuse(absl::Status status) { co_return status; }

int64_t MonotonicMicros() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000;
}

// Reports whether `status` is the end a Cancellation or stop token asked for.
bool Ended(const absl::Status& status) {
  return absl::IsCancelled(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

absl::Status CheckFdName(absl::string_view name) {
  auto refuse = [name](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("FDNAME=\"", absl::CHexEscape(name), "\": ", why));
  };
  if (name.empty()) return refuse("empty");
  if (name.size() > kMaxFdNameLength) {
    return refuse(absl::StrCat(name.size(), " characters, at most ", kMaxFdNameLength));
  }
  for (const char c : name) {
    if (c == ':') return refuse("holds ':' (LISTEN_FDNAMES separates names with it)");
    if (c < ' ' || c > '~') return refuse("only printable ASCII characters are allowed");
  }
  return absl::OkStatus();
}

absl::StatusOr<Notifier> Notifier::FromEnvironment(bool unset_environment) {
  absl::StatusOr<Environment> read = ReadEnvironment();
  if (unset_environment) {
    ::unsetenv(kSocketVariable);
    ::unsetenv(kUsecVariable);
    ::unsetenv(kPidVariable);
  }
  if (!read.ok()) return read.status();
  return Notifier(std::move(read->address), read->watchdog_interval);
}

absl::Status Notifier::KeepConnected() {
  if (!address_.has_value() || kept_ != nullptr) return absl::OkStatus();
  absl::StatusOr<UniqueFd> socket = sockets::OpenSocket(AF_UNIX, SOCK_DGRAM);
  if (!socket.ok()) return sockets::Annotate(socket.status(), "sd_notify");
  if (::connect(socket->fd(), address_->data(), address_->size()) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("sd_notify: connect to ", address_->ToString()));
  }
  kept_ = std::make_shared<const UniqueFd>(std::move(*socket));
  return absl::OkStatus();
}

Task<absl::StatusOr<UnixSocket>> Notifier::OpenSocket(Cancellation cancel) const {
  if (kept_ == nullptr)
    co_return co_await UnixSocket::Connect(*address_, SocketType::kDatagram, cancel);
  UniqueFd copy(::fcntl(kept_->fd(), F_DUPFD_CLOEXEC, 0));
  if (!copy.is_open()) {
    co_return absl::ErrnoToStatus(
        errno, absl::StrCat("duplicate the socket connected to ", address_->ToString()));
  }
  co_return UnixSocket::Adopt(std::move(copy));
}

Task<absl::Status> Notifier::Send(std::string state, std::vector<int> fds,
                                  Cancellation cancel) const {
  if (absl::Status valid = CheckState(state, fds.size()); !valid.ok()) co_return valid;
  if (!address_.has_value()) co_return absl::OkStatus();
  const SocketAddress to = *address_;
  absl::StatusOr<UnixSocket> socket = co_await OpenSocket(cancel);
  if (!socket.ok()) co_return sockets::Annotate(socket.status(), "sd_notify");
  const ConstBytes bytes(state);
  const std::span<const int> passed(fds);
  absl::StatusOr<size_t> sent = co_await socket->SendFds(bytes, passed, cancel);
  if (!sent.ok()) {
    co_return sockets::Annotate(sent.status(), absl::StrCat("sd_notify to ", to.ToString()));
  }
  co_return absl::OkStatus();
}

Task<absl::Status> Notifier::Ready(Cancellation cancel) const {
  return Send("READY=1", {}, std::move(cancel));
}

Task<absl::Status> Notifier::Ready(pid_t main_pid, Cancellation cancel) const {
  if (absl::Status valid = CheckPid(main_pid); !valid.ok()) return Refuse(std::move(valid));
  return Send(absl::StrCat("READY=1\nMAINPID=", main_pid), {}, std::move(cancel));
}

Task<absl::Status> Notifier::Stopping(Cancellation cancel) const {
  return Send("STOPPING=1", {}, std::move(cancel));
}

Task<absl::Status> Notifier::Reloading(Cancellation cancel) const {
  return Send(absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", MonotonicMicros()), {},
              std::move(cancel));
}

Task<absl::Status> Notifier::Status(absl::string_view text, Cancellation cancel) const {
  std::string state = absl::StrCat("STATUS=", text);
  for (char& c : state) {
    if (c == '\n' || c == '\0') c = ' ';
  }
  return Send(std::move(state), {}, std::move(cancel));
}

Task<absl::Status> Notifier::MainPid(pid_t pid, Cancellation cancel) const {
  if (absl::Status valid = CheckPid(pid); !valid.ok()) return Refuse(std::move(valid));
  return Send(absl::StrCat("MAINPID=", pid), {}, std::move(cancel));
}

Task<absl::Status> Notifier::Watchdog(Cancellation cancel) const {
  return Send("WATCHDOG=1", {}, std::move(cancel));
}

Task<absl::Status> Notifier::StoreFds(absl::string_view name, std::vector<int> fds,
                                      Cancellation cancel) const {
  if (absl::Status valid = CheckFdName(name); !valid.ok()) return Refuse(std::move(valid));
  if (fds.empty()) {
    return Refuse(absl::InvalidArgumentError(
        absl::StrCat("sd_notify: FDSTORE=1 for \"", name, "\" with no descriptors")));
  }
  return Send(absl::StrCat("FDSTORE=1\nFDNAME=", name), std::move(fds), std::move(cancel));
}

Task<absl::Status> Notifier::RemoveStoredFds(absl::string_view name, Cancellation cancel) const {
  if (absl::Status valid = CheckFdName(name); !valid.ok()) return Refuse(std::move(valid));
  return Send(absl::StrCat("FDSTOREREMOVE=1\nFDNAME=", name), {}, std::move(cancel));
}

Task<absl::Status> Notifier::RunWatchdog(Cancellation cancel) const {
  if (watchdog_interval_ == absl::ZeroDuration()) co_return absl::OkStatus();
  while (true) {
    // Each await in a statement of its own (GCC 12: see net/task.h).
    const absl::Status sent = co_await Watchdog(cancel);
    if (Ended(sent)) co_return absl::OkStatus();
    if (!sent.ok()) co_return sent;
    const absl::Status slept = co_await Sleep(watchdog_interval_, cancel);
    if (!slept.ok()) co_return absl::OkStatus();
  }
}

}  // namespace conet::ipc
