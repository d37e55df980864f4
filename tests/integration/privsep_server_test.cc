// End-to-end tests of examples/privsep_server: the monitor and its worker
// as real processes, driven by a plain blocking client.
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"
#include "tests/integration/subprocess.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::AsNobody;
using ::conet::test::ProcStatusField;
using ::conet::test::RunfilePath;
using ::conet::test::SharedTempDir;
using ::conet::test::Subprocess;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

// The child of process `pid`, whichever of its threads started it.
pid_t OnlyChild(pid_t pid) {
  std::string children;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"))) {
    children += ReadFile((task.path() / "children").string());
  }
  int child = 0;
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(children), &child))
      << "children: \"" << children << "\"";
  return child;
}

std::string RoundTrip(const SocketAddress& address, const std::string& message) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd.fd(), address.data(), address.size()) != 0) return "connect failed";
  ::send(fd.fd(), message.data(), message.size(), MSG_NOSIGNAL);
  std::string back(message.size(), '\0');
  size_t got = 0;
  while (got < back.size()) {
    const ssize_t n = ::recv(fd.fd(), back.data() + got, back.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  back.resize(got);
  return back;
}

using Running = ::conet::test::ListeningProcess;

Running Start(const std::string& listen, const std::string& log) {
  return ::conet::test::StartListening(
      {RunfilePath("examples/privsep_server"), "--listen=" + listen, "--log=" + log});
}

TEST(PrivsepServerTest, TheWorkerServesWithoutPrivilegesAndTheMonitorLogs) {
  const std::string log = TempPath("privsep.log");
  Running server = Start("127.0.0.1:0", log);
  EXPECT_EQ(RoundTrip(server.address, "through the worker"), "through the worker");

  const pid_t worker = OnlyChild(server.process.pid());
  ASSERT_GT(worker, 0);
  EXPECT_EQ(ProcStatusField(worker, "NoNewPrivs"), "1");
  const passwd* nobody = ::getpwnam("nobody");
  const uid_t expected = ::geteuid() == 0 && nobody != nullptr ? nobody->pw_uid : ::geteuid();
  EXPECT_EQ(ProcStatusField(worker, "Uid"),
            absl::StrCat(expected, "\t", expected, "\t", expected, "\t", expected));
  // The log was opened by the monitor and written by the worker.
  EXPECT_THAT(ReadFile(log), HasSubstr("connection from 127.0.0.1:"));

  absl::StatusOr<int> status = server.process.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << server.process.Stderr();
  EXPECT_NE(::kill(worker, 0), 0) << "the worker outlived the monitor";
}

// Echoes once through `server`'s worker; returns the worker's pid.
pid_t SandboxedWorker(Running* server) {
  EXPECT_EQ(RoundTrip(server->address, "sandboxed"), "sandboxed");
  return OnlyChild(server->process.pid());
}

// privsep_server with --sandbox=`sandbox`.
Running StartSandboxed(const std::string& sandbox) {
  return ::conet::test::StartListening(
      {RunfilePath("examples/privsep_server"), "--listen=127.0.0.1:0",
       "--log=" + TempPath("privsep-sandbox.log"), "--sandbox=" + sandbox});
}

TEST(PrivsepServerTest, TheWorkerLocksItselfDown) {
  if (::geteuid() != 0) GTEST_SKIP() << "strict needs root: the bounding set and the identity";
  Running server = StartSandboxed("strict");
  const pid_t worker = SandboxedWorker(&server);
  ASSERT_GT(worker, 0);
  EXPECT_EQ(ProcStatusField(worker, "NoNewPrivs"), "1");
  EXPECT_EQ(ProcStatusField(worker, "Seccomp"), "2");
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_EQ(ProcStatusField(worker, set), "0000000000000000") << set;
  }
  absl::StatusOr<int> status = server.process.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << server.process.Stderr();
  const std::string said = server.process.Stderr();
  EXPECT_THAT(said, HasSubstr("privsep_server worker: sandbox: enforced identity (nobody uid "));
  EXPECT_THAT(said, HasSubstr("landlock (ABI "));
  EXPECT_THAT(said, HasSubstr("seccomp ("));
  EXPECT_THAT(said, HasSubstr("; lacking: nothing\n"));
}

// With Landlock and seccomp refused from outside (the filter is inherited
// by the worker), best effort says so and serves; strict exits 1.
TEST(PrivsepServerTest, TheWorkersReportSaysWhatWasLackingAndStrictExitsOne) {
  const std::string refuse = RunfilePath("tests/integration/refuse_sandbox");
  const std::string server_path = RunfilePath("examples/privsep_server");
  const std::string log = "--log=" + TempPath("privsep-refused.log");
  Running server =
      ::conet::test::StartListening({refuse, server_path, "--listen=127.0.0.1:0", log});
  EXPECT_EQ(RoundTrip(server.address, "lacking"), "lacking");
  absl::StatusOr<int> status = server.process.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
  EXPECT_THAT(server.process.Stderr(),
              HasSubstr("; lacking: landlock (the kernel has no Landlock), seccomp (libseccomp "
                        "found no seccomp(2) with thread sync, API level "));

  absl::StatusOr<Subprocess> strict =
      Subprocess::Start({refuse, server_path, "--listen=127.0.0.1:0", log, "--sandbox=strict"});
  ASSERT_TRUE(strict.ok()) << strict.status();
  EXPECT_FALSE(strict->WaitListening().ok());
  status = strict->Stop(SIGKILL);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 1) << strict->Stderr();
  EXPECT_THAT(strict->Stderr(),
              HasSubstr("privsep_server worker: sandbox (strict): landlock could not be applied: "
                        "the kernel has no Landlock\n"));
}

TEST(PrivsepServerTest, SandboxOffStillDropsToTheUser) {
  Running server = StartSandboxed("off");
  const pid_t worker = SandboxedWorker(&server);
  ASSERT_GT(worker, 0);
  EXPECT_EQ(ProcStatusField(worker, "NoNewPrivs"), "1");
  EXPECT_EQ(ProcStatusField(worker, "Seccomp"), "0");
  absl::StatusOr<int> status = server.process.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
  EXPECT_THAT(server.process.Stderr(), HasSubstr("privsep_server worker: sandbox: off, only "));
}

TEST(PrivsepServerTest, AnUnknownSandboxModeExitsTwo) {
  absl::StatusOr<Subprocess> process = Subprocess::Start(
      {RunfilePath("examples/privsep_server"), "--listen=127.0.0.1:0", "--sandbox=on"});
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> status = process->Stop(0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 2);
  EXPECT_THAT(process->Stderr(), HasSubstr("--sandbox=on: expected strict, best-effort or off"));
}

TEST(PrivsepServerTest, ServesOnAUnixSocketAndStopsOnSigint) {
  const std::string name = absl::StrCat("unix:@conet-privsep-", ::getpid());
  Running server = Start(name, TempPath("privsep-unix.log"));
  EXPECT_EQ(server.address.ToString(), name);
  EXPECT_EQ(RoundTrip(server.address, "unix"), "unix");
  absl::StatusOr<int> status = server.process.Stop(SIGINT);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
}

TEST(PrivsepServerTest, TheMonitorNoticesAWorkerThatDies) {
  Running server = Start("127.0.0.1:0", TempPath("privsep-dies.log"));
  const pid_t worker = OnlyChild(server.process.pid());
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  // The monitor exits by itself with status 1; Stop's signal then finds it
  // gone or still exiting.
  absl::StatusOr<int> status = server.process.Stop(0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 1);
  EXPECT_THAT(server.process.Stderr(), HasSubstr("the worker ended"));
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd.is_open()) << path;
  ASSERT_EQ(::write(fd.fd(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

// Starts the server with `log` and expects it to refuse it: exit status 1
// with `reason` on stderr.
void ExpectLogRefused(const std::string& log, const std::string& reason) {
  absl::StatusOr<Subprocess> process = Subprocess::Start(
      {RunfilePath("examples/privsep_server"), "--listen=127.0.0.1:0", "--log=" + log});
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> status = process->Stop(0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 1);
  EXPECT_THAT(process->Stderr(), HasSubstr(reason));
}

TEST(PrivsepServerTest, ALogSymlinkPlantedByAnotherUserIsNotFollowed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  SharedTempDir dir;
  const std::string victim = dir.Path("victim");
  WriteFile(victim, "root's\n", 0600);
  const std::string log = dir.Path("privsep.log");
  ASSERT_EQ(AsNobody([&] { return ::symlink(victim.c_str(), log.c_str()) == 0; }), 0);
  ExpectLogRefused(log, "is a symbolic link");
  EXPECT_EQ(ReadFile(victim), "root's\n");
}

TEST(PrivsepServerTest, ALogThatIsAHardLinkToAnotherFileIsRefused) {
  SharedTempDir dir;
  const std::string victim = dir.Path("victim");
  WriteFile(victim, "root's\n", 0600);
  const std::string log = dir.Path("privsep.log");
  // Made by root here: the kernel's protected_hardlinks keeps another user
  // from linking a file it cannot write, but a setting is no defence.
  ASSERT_EQ(::link(victim.c_str(), log.c_str()), 0);
  ExpectLogRefused(log, "hard links");
  EXPECT_EQ(ReadFile(victim), "root's\n");
}

TEST(PrivsepServerTest, AFifoLogIsRefusedEvenWithAReader) {
  SharedTempDir dir;
  const std::string fifo = dir.Path("privsep.log");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0666), 0);
  // With a reader the open succeeds; a writer would then block or die of
  // SIGPIPE once the reader goes.
  UniqueFd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(reader.is_open());
  ExpectLogRefused(fifo, "not a regular file");
  // Without a reader the open does not block either.
  reader.Reset();
  ExpectLogRefused(fifo, "No such device or address");
}

TEST(PrivsepServerTest, APeerNameCannotForgeALogLine) {
  const std::string log = TempPath("privsep-forge.log");
  ::unlink(log.c_str());
  const std::string name = absl::StrCat("unix:@conet-privsep-forge-", ::getpid());
  Running server = Start(name, log);
  // A client bound to an abstract name holding a newline.
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const std::string forged("\0x\nFORGED line", 14);
  sockaddr_un own{};
  own.sun_family = AF_UNIX;
  std::memcpy(own.sun_path, forged.data(), forged.size());
  ASSERT_EQ(::bind(client.fd(), reinterpret_cast<sockaddr*>(&own),
                   offsetof(sockaddr_un, sun_path) + forged.size()),
            0);
  ASSERT_EQ(::connect(client.fd(), server.address.data(), server.address.size()), 0);
  ASSERT_EQ(::send(client.fd(), "x", 1, MSG_NOSIGNAL), 1);
  char back = 0;
  ASSERT_EQ(::recv(client.fd(), &back, 1, 0), 1);  // logged before echoing
  const std::string text = ReadFile(log);
  EXPECT_THAT(text, HasSubstr("connection from unix:@x\\nFORGED line\n"));
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    EXPECT_FALSE(absl::StartsWith(line, "FORGED")) << text;
  }
  client = UniqueFd();  // else the stop would drain it for --drain-timeout
  absl::StatusOr<int> status = server.process.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
}

// Returns what each of `pid`'s descriptors refers to (/proc/PID/fd links).
std::vector<std::string> DescriptorTargets(pid_t pid) {
  std::vector<std::string> targets;
  for (const auto& entry :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"))) {
    std::error_code error;
    targets.push_back(std::filesystem::read_symlink(entry.path(), error).string());
  }
  return targets;
}

TEST(PrivsepServerTest, TheWorkerGetsNoneOfTheMonitorsInheritedDescriptorsOrVariables) {
  SharedTempDir dir;
  const std::string secret = dir.Path("secret");
  WriteFile(secret, "root only\n", 0600);
  // As an operator's shell would start it: fd 7 open on a root-only file,
  // not close-on-exec, and a variable the worker has no business seeing.
  absl::StatusOr<Subprocess> monitor = Subprocess::Start(
      {"/bin/bash", "-c",
       absl::StrCat("exec 7<", secret, "; export CONET_TEST_SECRET=1; exec \"$0\" \"$@\""),
       RunfilePath("examples/privsep_server"), "--listen=127.0.0.1:0",
       "--log=" + dir.Path("privsep.log")});
  ASSERT_TRUE(monitor.ok()) << monitor.status();
  ASSERT_TRUE(monitor->WaitListening().ok()) << monitor->Stderr();
  EXPECT_THAT(DescriptorTargets(monitor->pid()), ::testing::Contains(secret));
  const pid_t worker = OnlyChild(monitor->pid());
  ASSERT_GT(worker, 0);
  EXPECT_THAT(DescriptorTargets(worker), ::testing::Not(::testing::Contains(secret)));
  EXPECT_THAT(ReadFile(absl::StrCat("/proc/", worker, "/environ")),
              ::testing::Not(HasSubstr("CONET_TEST_SECRET")));
  absl::StatusOr<int> status = monitor->Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
}

// Returns the next datagram on `fd` within `timeout_ms` milliseconds, or
// "(nothing)".
std::string ReceiveWithin(int fd, int timeout_ms) {
  pollfd ready{fd, POLLIN, 0};
  if (::poll(&ready, 1, timeout_ms) != 1) return "(nothing)";
  char buffer[512];
  const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
  return n < 0 ? "(recv failed)" : std::string(buffer, static_cast<size_t>(n));
}

TEST(PrivsepServerTest, TellsSystemdWhenReadyAndWhenStopping) {
  // The service manager's notification socket (NOTIFY_SOCKET, Type=notify).
  const std::string name = absl::StrCat("@conet-privsep-notify-", ::getpid());
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + name);
  ASSERT_TRUE(address.ok()) << address.status();
  const UniqueFd manager(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(manager.fd(), address->data(), address->size()), 0);
  ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
  Running server = Start("127.0.0.1:0", TempPath("privsep-notify.log"));
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(ReceiveWithin(manager.fd(), 10000), "READY=1");
  const pid_t worker = OnlyChild(server.process.pid());
  EXPECT_THAT(ReadFile(absl::StrCat("/proc/", worker, "/environ")),
              ::testing::Not(HasSubstr("NOTIFY_SOCKET")));
  absl::StatusOr<int> status = server.process.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << server.process.Stderr();
  // STATUS= lines come between; STOPPING=1 follows them.
  std::string message = ReceiveWithin(manager.fd(), 1000);
  while (absl::StartsWith(message, "STATUS=")) message = ReceiveWithin(manager.fd(), 1000);
  EXPECT_EQ(message, "STOPPING=1");
}

TEST(PrivsepServerTest, BadFlagsExitTwo) {
  absl::StatusOr<Subprocess> process =
      Subprocess::Start({RunfilePath("examples/privsep_server"), "--listen=nowhere"});
  ASSERT_TRUE(process.ok());
  absl::StatusOr<int> status = process->Stop(0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 2);
}

}  // namespace
}  // namespace conet
