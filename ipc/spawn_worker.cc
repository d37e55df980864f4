#include "ipc/spawn_worker.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

// Everything the child needs between fork and exec, prepared before the
// fork: the child of a threaded process may only make system calls that
// are async-signal-safe (no allocation, no locks) until it execs.
struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const int* sources;
  size_t source_count;
  int report_fd;
  pid_t parent;
  const WorkerOptions* options;
};

// The steps of the child between fork and exec, for the parent's error.
enum Step : int { kSignals, kDeathSignal, kLimit, kNoNewPrivs, kDup, kCloseRange, kExec };
constexpr const char* kStepNames[] = {
    "reset signals", "PR_SET_PDEATHSIG", "setrlimit", "PR_SET_NO_NEW_PRIVS",
    "dup2",          "close_range",      "exec"};

// Reports `step` and errno on `report_fd` and ends the child.
[[noreturn]] void ReportAndExit(int report_fd, Step step) {
  const int report[2] = {step, errno};
  [[maybe_unused]] const ssize_t n = ::write(report_fd, report, sizeof report);
  ::_exit(127);
}

// Marks every descriptor from `first` on close-on-exec: close_range where
// the kernel has CLOSE_RANGE_CLOEXEC (5.11), else one by one up to the
// descriptor limit.
bool CloseAllAtExec(int first) {
  if (::syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return true;
  if (errno != EINVAL && errno != ENOSYS) return false;
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) != 0) return false;
  for (rlim_t fd = static_cast<rlim_t>(first); fd < files.rlim_cur; ++fd) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);  // EBADF: not open
  }
  return true;
}

// The child's side: reports the failing step and errno on
// `plan.report_fd` and exits 127 if a step fails. Every signal the parent
// had handled or ignored is back at its default action before any is
// unblocked (the parent blocked them all around the fork), so no handler
// of the parent's runs here and the worker starts as a fresh program would
// (a server blocks SIGTERM for signalfd; Bazel ignores SIGPIPE).
[[noreturn]] void RunChild(const ChildPlan& plan) {
  const int report = plan.report_fd;
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  for (int signal = 1; signal < NSIG; ++signal) {
    if (signal == SIGKILL || signal == SIGSTOP) continue;
    ::sigaction(signal, &default_action, nullptr);  // EINVAL for the C library's own: kept
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ReportAndExit(report, kSignals);
  const WorkerOptions& options = *plan.options;
  if (options.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, options.parent_death_signal, 0, 0, 0) != 0) {
      ReportAndExit(report, kDeathSignal);
    }
    // The parent may have gone before the prctl: then the signal is due now.
    if (::getppid() != plan.parent) ::raise(options.parent_death_signal);
  }
  for (const auto& [resource, value] : options.limits) {
    const rlimit limit{value, value};
    if (::setrlimit(resource, &limit) != 0) ReportAndExit(report, kLimit);
  }
  if (options.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    ReportAndExit(report, kNoNewPrivs);
  }
  for (size_t i = 0; i < plan.source_count; ++i) {
    // dup2 clears close-on-exec on the copy; the sources stay close-on-exec.
    if (::dup2(plan.sources[i], kWorkerFd + static_cast<int>(i)) < 0) ReportAndExit(report, kDup);
  }
  // Everything above is closed at exec, whether or not it was
  // close-on-exec (the report pipe with it).
  if (!CloseAllAtExec(kWorkerFd + static_cast<int>(plan.source_count))) {
    ReportAndExit(report, kCloseRange);
  }
  ::execve(plan.path, plan.argv, plan.envp);
  ReportAndExit(report, kExec);
}

// Reaps `pid`, retrying when interrupted.
void ReapChild(pid_t pid) {
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// The parent's side: end of file on the report pipe means the exec
// happened; a report means the child failed first (it is reaped here).
absl::Status AwaitExec(int report_fd, pid_t pid) {
  int report[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(report_fd, report, sizeof report);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return absl::OkStatus();
  if (n < 0) {
    // Whether it exec'd is unknown: do not leave it running unseen.
    const absl::Status status = absl::ErrnoToStatus(errno, "read the child's start report");
    ::kill(pid, SIGKILL);
    ReapChild(pid);
    return status;
  }
  ReapChild(pid);
  if (n != static_cast<ssize_t>(sizeof report) || report[0] < 0 || report[0] > kExec) {
    return absl::InternalError("the child failed to start");
  }
  return absl::ErrnoToStatus(report[1], kStepNames[report[0]]);
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
  std::vector<int> source_fds;
  for (const UniqueFd& source : *sources) source_fds.push_back(source.fd());
  // Where the child reports a failure before exec: above every target,
  // close-on-exec, so exec closes it and the parent reads end of file.
  int report_fds[2];
  if (::pipe2(report_fds, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, what);
  UniqueFd report_read(report_fds[0]);
  UniqueFd report_low(report_fds[1]);
  UniqueFd report_write(
      ::fcntl(report_low.fd(), F_DUPFD_CLOEXEC, kWorkerFd + static_cast<int>(sources->size())));
  report_low = UniqueFd();
  if (!report_write.is_open()) return absl::ErrnoToStatus(errno, what);
  std::vector<char*> args = Pointers(argv);
  std::vector<char*> envp = Pointers(*env);
  const ChildPlan plan{.path = args[0],
                       .argv = args.data(),
                       .envp = envp.data(),
                       .sources = source_fds.data(),
                       .source_count = source_fds.size(),
                       .report_fd = report_write.fd(),
                       .parent = ::getpid(),
                       .options = &options};
  // Every signal blocked across the fork: the child unblocks them only once
  // their handlers are gone.
  sigset_t all;
  sigset_t before;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &before);
  const pid_t pid = ::fork();
  if (pid == 0) RunChild(plan);
  const int fork_error = errno;
  ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  if (pid < 0) return absl::ErrnoToStatus(fork_error, what);
  report_write = UniqueFd();
  if (absl::Status started = AwaitExec(report_read.fd(), pid); !started.ok()) {
    return sockets::Annotate(started, what);
  }
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
