// Each test forks a child that applies a sandbox and then tries what the
// sandbox forbids (and what it must still allow); the child writes its
// report and its findings to a pipe, and the parent checks them.
#include "ipc/sandbox.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/event_loop.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/unique_fd.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// What the child found: its report (or the error ApplySandbox returned),
// and the line its body wrote, or how it died.
struct Outcome {
  std::string report;
  std::string found;
  int exit_code = -1;  // -1: killed
  int signal = 0;
};

// Writes all of `text` to `fd` (the child's pipe to the parent).
void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Reads `fd` to its end, then closes it.
std::string ReadToEnd(int fd) {
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, n);
  ::close(fd);
  return text;
}

// Runs `body` in a child after ApplySandbox(policy, mode). `before` runs in
// the child before the sandbox (to set up an outer restriction).
Outcome RunSandboxed(const SandboxPolicy& policy, SandboxMode mode,
                     const std::function<std::string()>& body,
                     const std::function<void()>& before = nullptr) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (before) before();
    absl::StatusOr<SandboxReport> report = ApplySandbox(policy, mode);
    if (!report.ok()) {
      WriteAll(fds[1], absl::StrCat("error: ", report.status().message(), "\n"));
      ::_exit(3);
    }
    WriteAll(fds[1], report->ToString() + "\n");
    WriteAll(fds[1], body() + "\n");
    ::_exit(0);
  }
  ::close(fds[1]);
  const std::string text = ReadToEnd(fds[0]);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  Outcome outcome;
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty()) outcome.report = lines[0];
  if (lines.size() > 1) outcome.found = lines[1];
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  return outcome;
}

// "ok", or what failed and with which errno.
std::string Errno(bool failed, int expected, const char* what) {
  if (!failed) return absl::StrCat(what, " succeeded");
  if (errno != expected) return absl::StrCat(what, ": ", std::strerror(errno));
  return "ok";
}

bool IsRoot() { return ::geteuid() == 0; }

std::string StatusField(const std::string& status, const std::string& key) {
  std::istringstream lines(status);
  std::string line;
  while (std::getline(lines, line)) {
    if (absl::StartsWith(line, key + ":")) {
      return std::string(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
    }
  }
  return "";
}

TEST(SandboxTest, ParsesTheModes) {
  EXPECT_EQ(*ParseSandboxMode("strict"), SandboxMode::kStrict);
  EXPECT_EQ(*ParseSandboxMode("best-effort"), SandboxMode::kBestEffort);
  EXPECT_EQ(*ParseSandboxMode("off"), SandboxMode::kOff);
  absl::StatusOr<SandboxMode> bad = ParseSandboxMode("on");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("--sandbox=on"));
}

TEST(SandboxTest, TheWorkerSandboxShowsInProcStatus) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to drop to nobody";
  // The child holds the sandbox while the parent reads its status.
  int hold[2];
  int said[2];
  ASSERT_EQ(::pipe2(hold, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(said, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(hold[1]);  // else the read below never sees the parent's close
    ::close(said[0]);
    SandboxPolicy policy = WorkerSandbox();
    policy.user = "nobody";
    absl::StatusOr<SandboxReport> report = ApplySandbox(policy, SandboxMode::kStrict);
    WriteAll(said[1], report.ok() ? report->ToString() : std::string(report.status().message()));
    ::close(said[1]);
    char c;
    [[maybe_unused]] const ssize_t released = ::read(hold[0], &c, 1);
    ::_exit(report.ok() ? 0 : 3);
  }
  ::close(said[1]);
  const std::string report = ReadToEnd(said[0]);
  std::ifstream file(absl::StrCat("/proc/", pid, "/status"));
  std::stringstream status;
  status << file.rdbuf();
  ::close(hold[1]);
  int exit_status = 0;
  ASSERT_EQ(::waitpid(pid, &exit_status, 0), pid);
  ::close(hold[0]);
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << report;
  EXPECT_THAT(report, StartsWith("sandbox: enforced identity (nobody uid 65534"));
  EXPECT_THAT(report, HasSubstr("; lacking: nothing"));
  const std::string text = status.str();
  EXPECT_EQ(StatusField(text, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(text, "Seccomp"), "2");
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(StatusField(text, set), "0000000000000000") << set;
  }
  EXPECT_THAT(StatusField(text, "Uid"), StartsWith("65534\t65534\t65534"));
  EXPECT_EQ(StatusField(text, "Groups"), "");
}

TEST(SandboxTest, IdentityCannotBeRegained) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to drop to nobody";
  SandboxPolicy policy = EmptySandbox();
  policy.user = "nobody";
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [] {
    if (::setuid(0) == 0 || ::seteuid(0) == 0) return std::string("regained root");
    return Errno(::setgid(0) == -1, EPERM, "setgid(0)");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
}

TEST(SandboxTest, TheParentDeathSignalSurvivesTheIdentityChange) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to drop to nobody";
  SandboxPolicy policy = EmptySandbox();
  policy.user = "nobody";
  Outcome outcome = RunSandboxed(
      policy, SandboxMode::kStrict,
      [] {
        int signal = 0;
        ::prctl(PR_GET_PDEATHSIG, &signal, 0, 0, 0);
        return absl::StrCat("pdeath=", signal);
      },
      [] { ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); });
  EXPECT_EQ(outcome.found, "pdeath=9") << outcome.report;
}

TEST(SandboxTest, AnUnknownUserIsAnErrorInEveryMode) {
  if (!IsRoot()) GTEST_SKIP() << "only root changes user";
  SandboxPolicy policy = EmptySandbox();
  policy.user = "conet-no-such-user";
  Outcome outcome = RunSandboxed(policy, SandboxMode::kBestEffort, [] { return "ran"; });
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.report, "error: sandbox: no user \"conet-no-such-user\"");
}

TEST(SandboxTest, LimitsRefuseNewProcesses) {
  if (!IsRoot()) GTEST_SKIP() << "RLIMIT_NPROC counts the user's processes: needs its own";
  SandboxPolicy policy = EmptySandbox();
  policy.user = "nobody";
  policy.no_new_processes = true;
  policy.no_core_dumps = true;
  policy.bound_open_files = true;
  policy.max_open_files = 64;
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [] {
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    if (child > 0) return std::string("fork succeeded");
    if (errno != EAGAIN) return absl::StrCat("fork: ", std::strerror(errno));
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    if (files.rlim_max != 64) return absl::StrCat("nofile ", files.rlim_max);
    return std::string("ok");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("limits (nproc 0, core 0, nofile 64)"));
}

// A process that starts threads after its sandbox forbids new processes
// once they run: the thread starts, and then neither a process nor a
// thread can.
TEST(SandboxTest, NewProcessesCanBeForbiddenOnceTheThreadsRun) {
  if (!IsRoot()) GTEST_SKIP() << "RLIMIT_NPROC counts the user's processes: needs its own";
  SandboxPolicy policy = EmptySandbox();
  policy.user = "nobody";
  policy.no_core_dumps = true;
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [] {
    std::thread([] {}).join();
    SandboxReport report;
    report.layers.push_back({"limits", SandboxLayer::State::kEnforced, "core 0"});
    if (absl::Status forbidden = ForbidNewProcesses(SandboxMode::kStrict, &report);
        !forbidden.ok()) {
      return std::string(forbidden.message());
    }
    if (report.ToString() != "sandbox: enforced limits (nproc 0, core 0); lacking: nothing") {
      return report.ToString();
    }
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    if (child > 0) return std::string("fork succeeded");
    std::string found = Errno(true, EAGAIN, "fork");
    pthread_t thread;
    const int started = ::pthread_create(
        &thread, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
    if (started == 0) return std::string("pthread_create succeeded");
    if (started != EAGAIN) return absl::StrCat("pthread_create: ", std::strerror(started));
    return found;
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("limits (core 0)"));
}

TEST(SandboxTest, LandlockWithNoPathsOpensNothing) {
  test::SharedTempDir dir;
  const std::string file = dir.Path("readable");
  std::ofstream(file) << "x";
  SandboxPolicy policy = EmptySandbox();
  policy.no_new_privs = true;
  policy.landlock = true;
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    const std::string read = Errno(::open(file.c_str(), O_RDONLY) < 0, EACCES, "open");
    if (read != "ok") return read;
    return Errno(::open(dir.Path("new").c_str(), O_WRONLY | O_CREAT, 0600) < 0, EACCES, "create");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("landlock (ABI "));
  EXPECT_THAT(outcome.report, HasSubstr("no filesystem"));
}

TEST(SandboxTest, LandlockReadOnlyBeneathARoot) {
  test::SharedTempDir root;
  test::SharedTempDir outside;
  std::ofstream(root.Path("inside")) << "in";
  std::ofstream(outside.Path("outside")) << "out";
  SandboxPolicy policy = EmptySandbox();
  policy.no_new_privs = true;
  policy.landlock = true;
  policy.read_only_paths = {root.path()};
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    UniqueFd inside(::open(root.Path("inside").c_str(), O_RDONLY | O_CLOEXEC));
    if (!inside.is_open()) return absl::StrCat("open inside: ", std::strerror(errno));
    const std::string write =
        Errno(::open(root.Path("inside").c_str(), O_WRONLY) < 0, EACCES, "open for writing");
    if (write != "ok") return write;
    const std::string create = Errno(::open(root.Path("new").c_str(), O_WRONLY | O_CREAT, 0600) < 0,
                                     EACCES, "create inside");
    if (create != "ok") return create;
    return Errno(::open(outside.Path("outside").c_str(), O_RDONLY) < 0, EACCES, "open outside");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
}

// A TCP listener on 127.0.0.1 and an ephemeral port, its address in
// `address`; closed (not open) if any step failed.
UniqueFd LoopbackListener(sockaddr_in* address) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  *address = sockaddr_in{};
  address->sin_family = AF_INET;
  address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof *address;
  if (::bind(listener.fd(), reinterpret_cast<sockaddr*>(address), sizeof *address) != 0 ||
      ::listen(listener.fd(), 4) != 0 ||
      ::getsockname(listener.fd(), reinterpret_cast<sockaddr*>(address), &size) != 0) {
    return UniqueFd();
  }
  return listener;
}

// The paths are opened while the process is still who it was: a root that
// only root may reach works for a process that becomes nobody (which then
// reads beneath it through a descriptor opened before).
TEST(SandboxTest, LandlockPathsAreOpenedBeforeTheIdentityChanges) {
  if (!IsRoot()) GTEST_SKIP() << "needs root to become nobody";
  test::SharedTempDir root;
  ASSERT_EQ(::chmod(root.path().c_str(), 0700), 0);
  std::ofstream(root.Path("inside")) << "in";
  ASSERT_EQ(::chmod(root.Path("inside").c_str(), 0644), 0);
  UniqueFd held(::open(root.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  SandboxPolicy policy = EmptySandbox();
  policy.user = "nobody";
  policy.no_new_privs = true;
  policy.landlock = true;
  policy.read_only_paths = {root.path()};
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    // nobody may not search the directory itself: EACCES from the
    // permission check, which Landlock allows here.
    return Errno(::openat(held.fd(), "inside", O_RDONLY | O_CLOEXEC) < 0, EACCES, "openat");
  });
  EXPECT_EQ(outcome.exit_code, 0) << outcome.report;
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("identity (nobody"));
  EXPECT_THAT(outcome.report, HasSubstr("read-only beneath " + root.path()));
}

TEST(SandboxTest, LandlockRefusesTcpBindAndConnect) {
  if (LandlockAbi() < 4) GTEST_SKIP() << "Landlock ABI " << LandlockAbi() << " has no TCP rules";
  sockaddr_in address{};
  const UniqueFd listener = LoopbackListener(&address);
  ASSERT_TRUE(listener.is_open());
  SandboxPolicy policy = EmptySandbox();
  policy.no_new_privs = true;
  policy.landlock = true;
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    const UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const std::string connected = Errno(
        ::connect(client.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0,
        EACCES, "connect");
    if (connected != "ok") return connected;
    const UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    any.sin_port = htons(1 + (::getpid() % 20000) + 30000);
    return Errno(::bind(server.fd(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0, EACCES,
                 "bind");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("no TCP bind/connect"));
}

TEST(SandboxTest, LandlockScopesAbstractSocketsAndSignals) {
  if (LandlockAbi() < 6) GTEST_SKIP() << "Landlock ABI " << LandlockAbi() << " has no scoping";
  const std::string name = absl::StrCat("conet-sandbox-scope-", ::getpid());
  const UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  const socklen_t size = offsetof(sockaddr_un, sun_path) + 1 + name.size();
  ASSERT_EQ(::bind(listener.fd(), reinterpret_cast<sockaddr*>(&address), size), 0);
  ASSERT_EQ(::listen(listener.fd(), 4), 0);
  SandboxPolicy policy = EmptySandbox();
  policy.no_new_privs = true;
  policy.landlock = true;
  const pid_t parent = ::getpid();
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    const UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const std::string connected =
        Errno(::connect(client.fd(), reinterpret_cast<const sockaddr*>(&address), size) != 0, EPERM,
              "connect to an abstract socket outside");
    if (connected != "ok") return connected;
    return Errno(::kill(parent, 0) != 0, EPERM, "kill(parent, 0)");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("scoped abstract sockets and signals"));
}

TEST(SandboxTest, NewNamespacesCutTheNetworkButKeepWhatIsHeld) {
  if (!IsRoot()) GTEST_SKIP() << "new namespaces need CAP_SYS_ADMIN";
  sockaddr_in address{};
  const UniqueFd listener = LoopbackListener(&address);
  ASSERT_TRUE(listener.is_open());
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const UniqueFd ours(pair[0]);
  const UniqueFd theirs(pair[1]);
  SandboxPolicy policy = EmptySandbox();
  policy.unshare_namespaces = true;
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    // The new network namespace's loopback is down: the host's is gone.
    const UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(client.fd(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
      return std::string("reached the host's loopback");
    }
    // A socket it already held still works.
    if (::send(theirs.fd(), "held", 4, MSG_NOSIGNAL) != 4) return std::string("send failed");
    return std::string("ok");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("namespaces (network, IPC, UTS)"));
  char got[4];
  EXPECT_EQ(::recv(ours.fd(), got, sizeof got, MSG_DONTWAIT), 4);
}

// An event loop serving a socket it was handed: what a worker does.
Task<std::string> EchoOnce(StreamSocket* socket) {
  char buffer[16];
  absl::StatusOr<size_t> got = co_await socket->ReadSome(buffer);
  if (!got.ok()) co_return std::string(got.status().message());
  co_return std::string(buffer, *got);
}

TEST(SandboxTest, SeccompRefusesWhatIsNotListedAndTheLoopStillRuns) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair), 0);
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  ASSERT_EQ(::send(ours.fd(), "hello", 5, MSG_NOSIGNAL), 5);
  SandboxPolicy policy = EmptySandbox();
  policy.seccomp = true;
  policy.system_calls = EventLoopSystemCalls();
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [&] {
    // What a worker needs: a loop, a handed socket, a thread.
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    if (!loop.ok()) return absl::StrCat("loop: ", loop.status().message());
    absl::StatusOr<StreamSocket> socket = StreamSocket::Adopt(std::move(theirs), loop->get());
    if (!socket.ok()) return absl::StrCat("adopt: ", socket.status().message());
    const std::string echoed = (*loop)->BlockOn(EchoOnce(&*socket));
    if (echoed != "hello") return absl::StrCat("read: ", echoed);
    bool ran = false;
    std::thread thread([&ran] { ran = true; });
    thread.join();
    if (!ran) return std::string("no thread");
    // What it must not do.
    char* const argv[] = {const_cast<char*>("/bin/true"), nullptr};
    std::string refused = Errno(::execve("/bin/true", argv, nullptr) != 0, EPERM, "execve");
    if (refused != "ok") return refused;
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    refused = Errno(child < 0, EPERM, "fork");
    if (refused != "ok") return refused;
    refused = Errno(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0, EPERM, "ptrace");
    if (refused != "ok") return refused;
    refused = Errno(::socket(AF_INET, SOCK_STREAM, 0) < 0, EPERM, "socket");
    if (refused != "ok") return refused;
    // ioctl only with harmless requests: never typing into a terminal.
    const char typed = 'x';
    refused = Errno(::ioctl(0, TIOCSTI, &typed) != 0, EPERM, "ioctl(TIOCSTI)");
    if (refused != "ok") return refused;
    int pending = -1;
    if (::ioctl(ours.fd(), FIONREAD, &pending) != 0) return std::string("ioctl(FIONREAD) refused");
    // Limits: its own only.
    rlimit limit{};
    if (::prlimit(0, RLIMIT_NOFILE, nullptr, &limit) != 0)
      return std::string("own prlimit refused");
    refused = Errno(::prlimit(::getppid(), RLIMIT_NOFILE, nullptr, &limit) != 0, EPERM,
                    "prlimit of the parent");
    if (refused != "ok") return refused;
    return Errno(::mkdir("/tmp/conet-sandbox-never", 0700) != 0, EPERM, "mkdir");
  });
  EXPECT_EQ(outcome.found, "ok") << outcome.report;
  EXPECT_THAT(outcome.report, HasSubstr("seccomp ("));
  EXPECT_THAT(outcome.report, HasSubstr("others EPERM"));
}

TEST(SandboxTest, SeccompCanKill) {
  SandboxPolicy policy = EmptySandbox();
  policy.seccomp = true;
  policy.system_calls = EventLoopSystemCalls();
  policy.denial = SeccompDenial::kKill;
  Outcome outcome = RunSandboxed(policy, SandboxMode::kStrict, [] {
    (void)::mkdir("/tmp/conet-sandbox-never", 0700);
    return std::string("survived");
  });
  EXPECT_EQ(outcome.signal, SIGSYS) << outcome.found;
  EXPECT_NE(outcome.found, "survived");
}

TEST(SandboxTest, AnUnknownSystemCallNameIsAnError) {
  SandboxPolicy policy = EmptySandbox();
  policy.seccomp = true;
  policy.system_calls = {"read", "conet_no_such_call"};
  Outcome outcome = RunSandboxed(policy, SandboxMode::kBestEffort, [] { return "ran"; });
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.report, "error: sandbox: unknown system call \"conet_no_such_call\"");
}

// An outer seccomp filter standing in for a kernel without Landlock and a
// container that refuses further filters.
void RefuseLandlockAndSeccomp() {
  scmp_filter_ctx outer = seccomp_init(SCMP_ACT_ALLOW);
  seccomp_rule_add(outer, SCMP_ACT_ERRNO(ENOSYS),
                   seccomp_syscall_resolve_name("landlock_create_ruleset"), 0);
  seccomp_rule_add(outer, SCMP_ACT_ERRNO(EACCES), seccomp_syscall_resolve_name("seccomp"), 0);
  seccomp_rule_add(outer, SCMP_ACT_ERRNO(EACCES), seccomp_syscall_resolve_name("prctl"), 1,
                   SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP));
  if (seccomp_load(outer) != 0) ::_exit(4);
  seccomp_release(outer);
}

TEST(SandboxTest, BestEffortSaysWhatTheKernelRefused) {
  Outcome outcome = RunSandboxed(
      WorkerSandbox(), SandboxMode::kBestEffort, [] { return "ran"; }, RefuseLandlockAndSeccomp);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.found, "ran");
  EXPECT_THAT(outcome.report, HasSubstr("lacking: landlock (the kernel has no Landlock), "
                                        "seccomp (seccomp_load: Permission denied)"));
  EXPECT_THAT(outcome.report, HasSubstr("enforced "));
  EXPECT_THAT(outcome.report, HasSubstr("no-new-privs"));
}

TEST(SandboxTest, StrictFailsWhenALayerIsRefused) {
  Outcome outcome = RunSandboxed(
      WorkerSandbox(), SandboxMode::kStrict, [] { return "ran"; }, RefuseLandlockAndSeccomp);
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_EQ(outcome.report,
            "error: sandbox (strict): landlock could not be applied: the kernel has no Landlock");
}

TEST(SandboxTest, OffAppliesNothing) {
  Outcome outcome = RunSandboxed(WorkerSandbox(), SandboxMode::kOff, [] {
    return Errno(::mkdir("/tmp", 0700) != 0, EEXIST, "mkdir");  // not EPERM
  });
  EXPECT_EQ(outcome.report, "sandbox: off");
  EXPECT_EQ(outcome.found, "ok");
}

}  // namespace
}  // namespace conet::ipc
