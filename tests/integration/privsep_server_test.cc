// End-to-end tests of examples/privsep_server: the monitor and its worker
// as real processes, driven by a plain blocking client.
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"
#include "tests/integration/subprocess.h"

namespace conet {
namespace {

using ::conet::testing::RunfilePath;
using ::conet::testing::Subprocess;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

// Returns the value of `key` in /proc/PID/status ("Uid", "NoNewPrivs").
std::string StatusField(pid_t pid, const std::string& key) {
  std::istringstream text(ReadFile(absl::StrCat("/proc/", pid, "/status")));
  std::string line;
  while (std::getline(text, line)) {
    if (absl::StartsWith(line, key + ":")) {
      return std::string(absl::StripAsciiWhitespace(line.substr(key.size() + 1)));
    }
  }
  return "";
}

pid_t OnlyChild(pid_t pid) {
  const std::string children =
      ReadFile(absl::StrCat("/proc/", pid, "/task/", pid, "/children"));
  int child = 0;
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(children), &child))
      << "children: \"" << children << "\"";
  return child;
}

std::string RoundTrip(const SocketAddress& address, const std::string& message) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd.Get(), address.data(), address.size()) != 0) return "connect failed";
  ::send(fd.Get(), message.data(), message.size(), MSG_NOSIGNAL);
  std::string back(message.size(), '\0');
  size_t got = 0;
  while (got < back.size()) {
    const ssize_t n = ::recv(fd.Get(), back.data() + got, back.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  back.resize(got);
  return back;
}

struct Running {
  Subprocess monitor;
  SocketAddress address;
};

Running Start(const std::string& listen, const std::string& log) {
  absl::StatusOr<Subprocess> monitor = Subprocess::Start(
      {RunfilePath("examples/privsep_server"), "--listen=" + listen, "--log=" + log});
  if (!monitor.ok()) std::abort();
  absl::StatusOr<std::string> bound = monitor->WaitListening();
  absl::StatusOr<SocketAddress> address =
      bound.ok() ? SocketAddress::Parse(*bound) : bound.status();
  if (!address.ok()) {
    ADD_FAILURE() << address.status();
    std::abort();
  }
  return Running{std::move(*monitor), *address};
}

TEST(PrivsepServerTest, TheWorkerServesWithoutPrivilegesAndTheMonitorLogs) {
  const std::string log = TempPath("privsep.log");
  Running server = Start("127.0.0.1:0", log);
  EXPECT_EQ(RoundTrip(server.address, "through the worker"), "through the worker");

  const pid_t worker = OnlyChild(server.monitor.pid());
  ASSERT_GT(worker, 0);
  EXPECT_EQ(StatusField(worker, "NoNewPrivs"), "1");
  const passwd* nobody = ::getpwnam("nobody");
  const uid_t expected = ::geteuid() == 0 && nobody != nullptr ? nobody->pw_uid : ::geteuid();
  EXPECT_EQ(StatusField(worker, "Uid"),
            absl::StrCat(expected, "\t", expected, "\t", expected, "\t", expected));
  // The log was opened by the monitor and written by the worker.
  EXPECT_THAT(ReadFile(log), HasSubstr("connection from 127.0.0.1:"));

  absl::StatusOr<int> status = server.monitor.Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << server.monitor.Stderr();
  EXPECT_NE(::kill(worker, 0), 0) << "the worker outlived the monitor";
}

TEST(PrivsepServerTest, ServesOnAUnixSocketAndStopsOnSigint) {
  const std::string name = absl::StrCat("unix:@conet-privsep-", ::getpid());
  Running server = Start(name, TempPath("privsep-unix.log"));
  EXPECT_EQ(server.address.ToString(), name);
  EXPECT_EQ(RoundTrip(server.address, "unix"), "unix");
  absl::StatusOr<int> status = server.monitor.Stop(SIGINT);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0);
}

TEST(PrivsepServerTest, TheMonitorNoticesAWorkerThatDies) {
  Running server = Start("127.0.0.1:0", TempPath("privsep-dies.log"));
  const pid_t worker = OnlyChild(server.monitor.pid());
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  // The monitor exits by itself with status 1; Stop's signal then finds it
  // gone or still exiting.
  absl::StatusOr<int> status = server.monitor.Stop(0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 1);
  EXPECT_THAT(server.monitor.Stderr(), HasSubstr("the worker ended"));
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
