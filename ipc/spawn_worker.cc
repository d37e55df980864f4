#include "ipc/spawn_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "net/sockets/socket_ops.h"

namespace conet::ipc {
namespace {

// The descriptor number the worker finds its channel at.
constexpr int kWorkerFd = 3;

// Returns the child's environment: the caller's entries (any
// CONET_WORKER_FD among them replaced), plus CONET_WORKER_FD.
absl::StatusOr<std::vector<std::string>> WorkerEnvironment(std::vector<std::string> entries) {
  const std::string prefix = absl::StrCat(kWorkerFdVariable, "=");
  std::vector<std::string> env;
  for (std::string& entry : entries) {
    if (entry.find('=') == std::string::npos || entry.front() == '=') {
      return absl::InvalidArgumentError(absl::StrCat(
          "worker environment entry \"", absl::CHexEscape(entry), "\" is not NAME=value"));
    }
    if (!absl::StartsWith(entry, prefix)) env.push_back(std::move(entry));
  }
  env.push_back(absl::StrCat(prefix, kWorkerFd));
  return env;
}

// The descriptors the child gets at 3, 4, ..., each first copied above the
// highest of those numbers, so that no dup2 onto a target can overwrite a
// source still to be copied (and none is a no-op that keeps close-on-exec).
absl::StatusOr<std::vector<UniqueFd>> MoveAboveTargets(const std::vector<int>& fds,
                                                       absl::string_view what) {
  const int first_free = kWorkerFd + static_cast<int>(fds.size());
  std::vector<UniqueFd> moved;
  for (int fd : fds) {
    moved.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, first_free));
    if (!moved.back().is_open()) {
      return absl::ErrnoToStatus(errno, absl::StrCat(what, ": F_DUPFD_CLOEXEC of fd ", fd));
    }
  }
  return moved;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

Worker::Worker(Worker&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      channel_(std::move(other.channel_)) {}

Worker& Worker::operator=(Worker&& other) noexcept {
  if (this != &other) {
    Reap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    channel_ = std::move(other.channel_);
  }
  return *this;
}

Worker::~Worker() { Reap(); }

void Worker::Reap() noexcept {
  if (pid_ > 0 && pidfd_.is_open()) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.fd(), SIGKILL, nullptr, 0);
    siginfo_t info;
    ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.fd()), &info, WEXITED);
  }
  pid_ = -1;
}

absl::Status Worker::Kill(int signal) {
  if (::syscall(SYS_pidfd_send_signal, pidfd_.fd(), signal, nullptr, 0) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("signal ", signal, " to worker ", pid_));
  }
  return absl::OkStatus();
}

Task<absl::StatusOr<int>> Worker::Wait(Cancellation cancel) {
  const std::string what = absl::StrCat("wait for worker ", pid_);
  while (true) {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.fd()), &info, WEXITED | WNOHANG) != 0) {
      co_return absl::ErrnoToStatus(errno, what);
    }
    if (info.si_pid != 0) {
      pid_ = -1;  // reaped
      co_return info.si_code == CLD_EXITED ? info.si_status : 128 + info.si_status;
    }
    // A pidfd turns readable when the process exits.
    absl::Status ready = co_await pidfd_.Readable(cancel);
    if (!ready.ok()) co_return ready;
  }
}

absl::StatusOr<Worker> SpawnWorker(std::vector<std::string> argv, WorkerOptions options,
                                   EventLoop* loop) {
  if (argv.empty()) return absl::InvalidArgumentError("SpawnWorker: empty argv");
  const std::string what = absl::StrCat("spawn worker ", argv[0]);
  absl::StatusOr<EventLoop*> target = conet::internal::LoopOrCurrent(loop, what);
  if (!target.ok()) return target.status();
  absl::StatusOr<std::vector<std::string>> env = WorkerEnvironment(std::move(options.environment));
  if (!env.ok()) return sockets::Annotate(env.status(), what);
  absl::StatusOr<std::pair<UniqueFd, UniqueFd>> pair = SocketPairFds(SocketType::kSeqPacket);
  if (!pair.ok()) return pair.status();
  UniqueFd child_end = std::move(pair->second);
  // The child gets a blocking descriptor, as inherited ones usually are
  // (UnixSocket::Adopt makes it non-blocking for a conet worker).
  if (absl::Status s = sockets::SetNonBlocking(child_end.fd(), false); !s.ok()) {
    return sockets::Annotate(s, what);
  }
  std::vector<int> given = {child_end.fd()};
  given.insert(given.end(), options.fds.begin(), options.fds.end());
  absl::StatusOr<std::vector<UniqueFd>> sources = MoveAboveTargets(given, what);
  if (!sources.ok()) return sources.status();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  for (size_t i = 0; i < sources->size(); ++i) {
    posix_spawn_file_actions_adddup2(&actions, (*sources)[i].fd(), kWorkerFd + static_cast<int>(i));
  }
  // Everything above is closed, whether or not it was close-on-exec.
  posix_spawn_file_actions_addclosefrom_np(&actions, kWorkerFd + static_cast<int>(sources->size()));
  // The child starts with no signal blocked and the stop signals at their
  // default action, whatever the monitor blocked or ignored for itself
  // (a server blocks SIGTERM for sigwait/signalfd; Bazel ignores SIGPIPE).
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int signal : {SIGINT, SIGTERM, SIGPIPE, SIGHUP}) sigaddset(&defaults, signal);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args = Pointers(argv);
  std::vector<char*> envp = Pointers(*env);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, args[0], &actions, &attributes, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) return absl::ErrnoToStatus(error, what);
  // The child is ours and unreaped, so its pid cannot be reused meanwhile.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.is_open()) {
    const absl::Status status = absl::ErrnoToStatus(errno, absl::StrCat("pidfd_open ", pid));
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return status;
  }
  ::fcntl(pidfd.fd(), F_SETFD, FD_CLOEXEC);
  absl::StatusOr<AsyncFd> async_pidfd = AsyncFd::Create(std::move(pidfd), *target);
  absl::StatusOr<UnixSocket> channel = UnixSocket::Adopt(std::move(pair->first), *target);
  if (!async_pidfd.ok() || !channel.ok()) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return !async_pidfd.ok() ? async_pidfd.status() : channel.status();
  }
  return Worker(pid, std::move(*async_pidfd), std::move(*channel));
}

std::vector<std::string> InheritEnvironment(std::initializer_list<absl::string_view> names) {
  std::vector<std::string> entries;
  for (absl::string_view name : names) {
    const char* value = std::getenv(std::string(name).c_str());
    if (value != nullptr) entries.push_back(absl::StrCat(name, "=", value));
  }
  return entries;
}

std::string SelfExecutable() {
  char path[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof(path) - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : "/proc/self/exe";
}

absl::StatusOr<UniqueFd> WorkerChannelFd() {
  const char* value = std::getenv(kWorkerFdVariable);
  if (value == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(kWorkerFdVariable, " is not set: not started by SpawnWorker"));
  }
  int fd = -1;
  if (!absl::SimpleAtoi(value, &fd) || fd < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kWorkerFdVariable, "=\"", value, "\" is not a descriptor number"));
  }
  ::unsetenv(kWorkerFdVariable);
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat(kWorkerFdVariable, " names fd ", fd));
  }
  return UniqueFd(fd);
}

}  // namespace conet::ipc
