#include "tests/integration/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

extern char** environ;

namespace conet::test {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

}  // namespace

std::string RunfilePath(const std::string& target_path) {
  const char* root = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(root != nullptr ? root : ".", "/", workspace != nullptr ? workspace : "conet",
                      "/", target_path);
}

absl::StatusOr<Subprocess> Subprocess::Start(std::vector<std::string> argv, int max_fds) {
  static int counter = 0;
  const std::string stderr_path = TempPath(absl::StrCat("stderr-", ::getpid(), "-", counter++));
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  if (max_fds > 0) {
    // Through the shell's ulimit: posix_spawn cannot set limits.
    argv.insert(argv.begin(),
                {"/bin/sh", "-c", absl::StrCat("ulimit -n ", max_fds, " && exec \"$0\" \"$@\"")});
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (error != 0) {
    ::close(out[0]);
    return absl::ErrnoToStatus(error, absl::StrCat("posix_spawn ", argv[0]));
  }
  return Subprocess(pid, out[0], stderr_path);
}

Subprocess::Subprocess(Subprocess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdout_fd_(std::exchange(other.stdout_fd_, -1)),
      stderr_path_(std::move(other.stderr_path_)),
      stdout_seen_(std::move(other.stdout_seen_)) {}

Subprocess::~Subprocess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

absl::StatusOr<std::string> Subprocess::WaitListening(absl::Duration timeout) {
  return WaitForLine("listening on ", timeout);
}

absl::StatusOr<std::string> Subprocess::WaitForLine(const std::string& prefix,
                                                    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    for (absl::string_view line : absl::StrSplit(stdout_seen_, '\n')) {
      if (absl::StartsWith(line, prefix) &&
          stdout_seen_.find(absl::StrCat(line, "\n")) != std::string::npos) {
        return std::string(line.substr(prefix.size()));
      }
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("no \"", prefix, "\" line; stdout: ", stdout_seen_, " stderr: ", Stderr()));
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
    char buffer[256];
    const ssize_t n = ::read(stdout_fd_, buffer, sizeof(buffer));
    if (n == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "exited before a \"", prefix, "\" line; stdout: ", stdout_seen_, " stderr: ", Stderr()));
    }
    if (n > 0) stdout_seen_.append(buffer, static_cast<size_t>(n));
  }
}

absl::StatusOr<int> Subprocess::Stop(int signal, absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  // A pidfd becomes readable when the process exits: wait on it, bounded.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd < 0) return absl::ErrnoToStatus(errno, "pidfd_open");
  ::kill(pid_, signal);
  pollfd p{pidfd, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  ::close(pidfd);
  if (ready != 1) {
    return absl::DeadlineExceededError(
        absl::StrCat("did not exit within ", absl::FormatDuration(timeout)));
  }
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return absl::InternalError(
      absl::StrCat("killed by signal ", WTERMSIG(status), "; stderr: ", Stderr()));
}

absl::StatusOr<absl::Duration> Subprocess::CpuTime() const {
  std::ifstream stat(absl::StrCat("/proc/", pid_, "/stat"));
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the ")" closing the command name; utime and stime are the
  // 14th and 15th fields overall, the 12th and 13th after it.
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return absl::NotFoundError("no /proc stat");
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 1; i <= 13 && fields >> field; ++i) {
    if (i == 12) utime = std::atoll(field.c_str());
    if (i == 13) stime = std::atoll(field.c_str());
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  return absl::Milliseconds(1000 * (utime + stime) / ticks);
}

std::string Subprocess::Stderr() const {
  std::ifstream file(stderr_path_);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

ListeningProcess StartListening(std::vector<std::string> argv, int max_fds) {
  const std::string program = argv.empty() ? "" : argv[0];
  absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(argv), max_fds);
  if (!process.ok()) {
    ADD_FAILURE() << process.status();
    std::abort();
  }
  absl::StatusOr<std::string> listening = process->WaitListening();
  absl::StatusOr<SocketAddress> address =
      listening.ok() ? SocketAddress::Parse(*listening) : listening.status();
  if (!address.ok()) {
    ADD_FAILURE() << program << ": " << address.status() << "; stderr: " << process->Stderr();
    std::abort();
  }
  return ListeningProcess{std::move(*process), *address};
}

namespace {

std::string FieldOf(const std::string& path, const std::string& key) {
  std::ifstream file(path);
  std::string line;
  while (std::getline(file, line)) {
    if (absl::StartsWith(line, key + ":")) {
      return std::string(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
    }
  }
  return "";
}

}  // namespace

std::string ProcStatusField(pid_t pid, const std::string& key) {
  return FieldOf(absl::StrCat("/proc/", pid, "/status"), key);
}

std::string ProcStatusField(pid_t pid, pid_t tid, const std::string& key) {
  return FieldOf(absl::StrCat("/proc/", pid, "/task/", tid, "/status"), key);
}

std::vector<pid_t> ThreadsOf(pid_t pid) {
  std::vector<pid_t> threads;
  std::error_code error;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), error)) {
    int tid = 0;
    if (absl::SimpleAtoi(task.path().filename().string(), &tid)) threads.push_back(tid);
  }
  return threads;
}

}  // namespace conet::test
