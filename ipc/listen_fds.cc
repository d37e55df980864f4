#include "ipc/listen_fds.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace conet::ipc {
namespace {

constexpr char kPidVariable[] = "LISTEN_PID";
constexpr char kFdsVariable[] = "LISTEN_FDS";
constexpr char kNamesVariable[] = "LISTEN_FDNAMES";

// Returns a copy of the variable (getenv's pointer dies with unsetenv).
std::optional<std::string> GetVariable(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Parses `value` of `variable` as an integer in [min, max].
absl::StatusOr<long long> ParseNumber(const char* variable, const std::string& value, long long min,
                                      long long max) {
  long long number = 0;
  if (!absl::SimpleAtoi(value, &number) || number < min || number > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(variable, "=\"", value, "\": expected a number from ", min, " to ", max));
  }
  return number;
}

// Returns one name per descriptor: LISTEN_FDNAMES split at ':', or
// "unknown" for each when it is absent.
absl::StatusOr<std::vector<std::string>> Names(const std::optional<std::string>& names, int count) {
  if (!names.has_value()) return std::vector<std::string>(count, "unknown");
  std::vector<std::string> split;
  if (!names->empty()) split = absl::StrSplit(*names, ':');
  if (split.size() != static_cast<size_t>(count)) {
    return absl::InvalidArgumentError(absl::StrCat(kNamesVariable, "=\"", *names,
                                                   "\": ", split.size(), " names for ",
                                                   kFdsVariable, "=", count));
  }
  return split;
}

// Marks descriptors kListenFdsStart.. (`count` of them) close-on-exec,
// after checking that every one is open.
absl::Status MarkCloseOnExec(int count) {
  std::vector<int> flags;
  for (int fd = kListenFdsStart; fd < kListenFdsStart + count; ++fd) {
    const int got = ::fcntl(fd, F_GETFD);
    if (got < 0) {
      return absl::ErrnoToStatus(errno,
                                 absl::StrCat(kFdsVariable, "=", count, ": descriptor ", fd));
    }
    flags.push_back(got);
  }
  for (int i = 0; i < count; ++i) {
    const int fd = kListenFdsStart + i;
    if (::fcntl(fd, F_SETFD, flags[i] | FD_CLOEXEC) != 0) {
      return absl::ErrnoToStatus(errno,
                                 absl::StrCat("fcntl(F_SETFD, FD_CLOEXEC) on descriptor ", fd));
    }
  }
  return absl::OkStatus();
}

// Reads the variables and takes the descriptors; leaves the environment be.
absl::StatusOr<std::vector<ListenedFd>> TakeFds() {
  const std::optional<std::string> pid = GetVariable(kPidVariable);
  if (!pid.has_value()) return std::vector<ListenedFd>();
  absl::StatusOr<long long> pid_number = ParseNumber(kPidVariable, *pid, 1, INT_MAX);
  if (!pid_number.ok()) return pid_number.status();
  if (*pid_number != ::getpid()) return std::vector<ListenedFd>();  // not ours

  const std::optional<std::string> fds = GetVariable(kFdsVariable);
  if (!fds.has_value()) return std::vector<ListenedFd>();
  absl::StatusOr<long long> count = ParseNumber(kFdsVariable, *fds, 0, kMaxListenFds);
  if (!count.ok()) return count.status();
  const int n = static_cast<int>(*count);

  absl::StatusOr<std::vector<std::string>> names = Names(GetVariable(kNamesVariable), n);
  if (!names.ok()) return names.status();
  if (absl::Status marked = MarkCloseOnExec(n); !marked.ok()) return marked;

  std::vector<ListenedFd> taken;
  taken.reserve(n);
  for (int i = 0; i < n; ++i) {
    taken.push_back(ListenedFd{UniqueFd(kListenFdsStart + i), std::move((*names)[i])});
  }
  return taken;
}

// Returns the name of socket type `type` ("SOCK_STREAM", ...).
std::string TypeName(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "SOCK_STREAM";
    case SOCK_DGRAM:
      return "SOCK_DGRAM";
    case SOCK_SEQPACKET:
      return "SOCK_SEQPACKET";
    case SOCK_RAW:
      return "SOCK_RAW";
    default:
      return absl::StrCat("socket type ", type);
  }
}

// Returns the name of address family `family` ("AF_INET", ...).
std::string FamilyName(int family) {
  switch (family) {
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_UNIX:
      return "AF_UNIX";
    default:
      return absl::StrCat("address family ", family);
  }
}

// Reads integer socket option `option` of `fd`.
absl::StatusOr<int> IntOption(int fd, int option, const char* option_name,
                              const std::string& subject) {
  int value = 0;
  socklen_t size = sizeof value;
  if (::getsockopt(fd, SOL_SOCKET, option, &value, &size) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("getsockopt(", option_name, ") on ", subject));
  }
  return value;
}

absl::Status Wrong(const std::string& subject, const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat(subject, ": ", what));
}

bool FamilyFits(int family, const ListenerKind& kind) {
  if (kind.unix_only) return family == AF_UNIX;
  return family == AF_INET || family == AF_INET6 || family == AF_UNIX;
}

}  // namespace

absl::Status ValidateListener(int fd, const ListenerKind& kind, std::string_view name) {
  std::string subject = absl::StrCat("descriptor ", fd);
  if (!name.empty())
    absl::StrAppend(&subject, " (\"", absl::CHexEscape(absl::string_view(name.data(), name.size())),
                    "\")");
  struct stat status;
  if (::fstat(fd, &status) != 0) return absl::ErrnoToStatus(errno, absl::StrCat("fstat ", subject));
  if (!S_ISSOCK(status.st_mode)) return Wrong(subject, "not a socket");
  absl::StatusOr<int> type = IntOption(fd, SO_TYPE, "SO_TYPE", subject);
  if (!type.ok()) return type.status();
  if (*type != kind.type) {
    return Wrong(subject,
                 absl::StrCat("a ", TypeName(*type), " socket, expected ", TypeName(kind.type)));
  }
  absl::StatusOr<int> family = IntOption(fd, SO_DOMAIN, "SO_DOMAIN", subject);
  if (!family.ok()) return family.status();
  if (!FamilyFits(*family, kind)) {
    return Wrong(subject,
                 absl::StrCat("an ", FamilyName(*family), " socket, expected ",
                              kind.unix_only ? "AF_UNIX" : "AF_INET, AF_INET6 or AF_UNIX"));
  }
  absl::StatusOr<int> listening = IntOption(fd, SO_ACCEPTCONN, "SO_ACCEPTCONN", subject);
  if (!listening.ok()) return listening.status();
  if (*listening == 0) return Wrong(subject, "not listening (no listen(2) was called on it)");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ListenedFd>> ListenFds(bool unset_environment) {
  absl::StatusOr<std::vector<ListenedFd>> taken = TakeFds();
  if (unset_environment) {
    ::unsetenv(kPidVariable);
    ::unsetenv(kFdsVariable);
    ::unsetenv(kNamesVariable);
  }
  return taken;
}

}  // namespace conet::ipc
