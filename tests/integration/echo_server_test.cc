// End-to-end tests of examples/echo_server: the real binary, driven by
// clients written with plain blocking sockets (no conet), so the tests see
// exactly what any other program would.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"
#include "tests/integration/subprocess.h"

namespace conet {
namespace {

using ::conet::test::RunfilePath;
using ::conet::test::Subprocess;
using ::testing::HasSubstr;

// A running echo_server and the address it reported.
using Server = ::conet::test::ListeningProcess;

Server StartServer(std::vector<std::string> flags, int max_fds = 0) {
  flags.insert(flags.begin(), RunfilePath("examples/echo_server"));
  return ::conet::test::StartListening(std::move(flags), max_fds);
}

// Stops the server with `signal` and expects a clean exit.
void ExpectCleanExit(Server& server, int signal = SIGTERM) {
  absl::StatusOr<int> status = server.process.Stop(signal);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << server.process.Stderr();
}

// Connects a blocking socket, with send/receive timeouts so that no test can
// hang on a server that misbehaves.
UniqueFd Dial(const SocketAddress& address, absl::Duration timeout = absl::Seconds(10)) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  timeval tv{static_cast<time_t>(absl::ToInt64Seconds(timeout)), 0};
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(::connect(fd.fd(), address.data(), address.size()), 0)
      << address.ToString() << ": " << std::strerror(errno);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads `size` bytes (fewer if the stream ends or times out).
std::string ReceiveExactly(int fd, size_t size) {
  std::string data(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::recv(fd, data.data() + done, size - done, 0);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  data.resize(done);
  return data;
}

std::string ReceiveToEnd(int fd) {
  std::string data;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) return data;
    data.append(buffer, static_cast<size_t>(n));
  }
}

std::string RoundTrip(const SocketAddress& address, const std::string& message) {
  UniqueFd fd = Dial(address);
  EXPECT_TRUE(SendAll(fd.fd(), message));
  return ReceiveExactly(fd.fd(), message.size());
}

TEST(EchoServerTest, EchoesARoundTrip) {
  Server server = StartServer({"--listen=127.0.0.1:0"});
  EXPECT_TRUE(server.address.is_ipv4());
  EXPECT_NE(server.address.port(), 0);
  EXPECT_EQ(RoundTrip(server.address, "hello, echo"), "hello, echo");
  ExpectCleanExit(server);
}

TEST(EchoServerTest, SlowReaderGetsEveryByteOfOneMiB) {
  Server server = StartServer({"--listen=127.0.0.1:0"});
  UniqueFd fd = Dial(server.address);
  std::string data(1 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + i / 4093);
  // The writer blocks once the buffers fill: the server must stop reading
  // (back-pressure) rather than drop or buffer without bound.
  bool sent = false;
  std::thread writer([&] { sent = SendAll(fd.fd(), data); });
  std::string got;
  char buffer[1024];
  while (got.size() < data.size()) {
    const ssize_t n = ::recv(fd.fd(), buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    got.append(buffer, static_cast<size_t>(n));
    if (got.size() % (64 << 10) < 1024) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // a slow reader
    }
  }
  writer.join();
  EXPECT_TRUE(sent);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "echoed bytes differ";
  fd.Reset();  // a stopping server waits for open connections (the drain)
  ExpectCleanExit(server);
}

TEST(EchoServerTest, HalfCloseEchoesTheRestThenCloses) {
  Server server = StartServer({"--listen=127.0.0.1:0"});
  UniqueFd fd = Dial(server.address);
  const std::string message(100000, 'h');
  ASSERT_TRUE(SendAll(fd.fd(), message));
  ASSERT_EQ(::shutdown(fd.fd(), SHUT_WR), 0);
  EXPECT_EQ(ReceiveToEnd(fd.fd()), message);  // then end of stream
  ExpectCleanExit(server);
}

TEST(EchoServerTest, ServesFiveHundredConcurrentClients) {
  Server server = StartServer({"--listen=127.0.0.1:0"});
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 500; ++i) clients.push_back(Dial(server.address));
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(SendAll(clients[i].fd(), absl::StrCat("client ", i, ";")));
  }
  for (int i = 0; i < 500; ++i) {
    const std::string expected = absl::StrCat("client ", i, ";");
    EXPECT_EQ(ReceiveExactly(clients[i].fd(), expected.size()), expected);
  }
  clients.clear();  // a stopping server waits for open connections (the drain)
  ExpectCleanExit(server);
}

TEST(EchoServerTest, AClientResetMidStreamDoesNotHurtOthers) {
  Server server = StartServer({"--listen=127.0.0.1:0"});
  {
    UniqueFd fd = Dial(server.address);
    ASSERT_TRUE(SendAll(fd.fd(), std::string(1 << 20, 'r')));  // the echo is pending
    linger reset{1, 0};
    ::setsockopt(fd.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  }  // closed with RST
  EXPECT_EQ(RoundTrip(server.address, "still serving"), "still serving");
  ExpectCleanExit(server);
}

TEST(EchoServerTest, ListensOnIpv6Loopback) {
  Server server = StartServer({"--listen=[::1]:0"});
  EXPECT_TRUE(server.address.is_ipv6());
  EXPECT_THAT(server.address.ToString(), HasSubstr("[::1]:"));
  EXPECT_EQ(RoundTrip(server.address, "six"), "six");
  ExpectCleanExit(server);
}

TEST(EchoServerTest, ListensOnAUnixPathAndRemovesItOnExit) {
  char dir[] = "/tmp/conet-echo-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/echo.sock");
  Server server = StartServer({"--listen=unix:" + path});
  EXPECT_EQ(server.address.ToString(), "unix:" + path);
  EXPECT_EQ(RoundTrip(server.address, "via a path"), "via a path");
  ExpectCleanExit(server, SIGINT);
  struct stat st;
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
  ::rmdir(dir);
}

TEST(EchoServerTest, ListensOnAnAbstractName) {
  const std::string name = absl::StrCat("unix:@conet-echo-test-", ::getpid());
  Server server = StartServer({"--listen=" + name, "--threads=2"});
  EXPECT_EQ(server.address.ToString(), name);
  EXPECT_EQ(RoundTrip(server.address, "abstract"), "abstract");
  ExpectCleanExit(server);
}

TEST(EchoServerTest, SeveralThreadsShareThePort) {
  Server server = StartServer({"--listen=127.0.0.1:0", "--threads=3"});
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(RoundTrip(server.address, absl::StrCat("n", i)), absl::StrCat("n", i));
  }
  ExpectCleanExit(server);
}

TEST(EchoServerTest, BadFlagsAndAddressesExitWithAnError) {
  for (const char* flag : {"--listen=localhost", "--threads=0", "--bogus=1"}) {
    absl::StatusOr<Subprocess> process =
        Subprocess::Start({RunfilePath("examples/echo_server"), flag});
    ASSERT_TRUE(process.ok());
    EXPECT_FALSE(process->WaitListening().ok()) << flag;
    absl::StatusOr<int> status = process->Stop(SIGKILL);
    // Already exited by itself: Stop's SIGKILL found nothing to kill.
    ASSERT_TRUE(status.ok()) << flag << ": " << status.status();
    EXPECT_EQ(*status, 2) << flag;
    EXPECT_THAT(process->Stderr(), HasSubstr("echo_server: ")) << flag;
  }
}

// Returns how many of `clients` have data to read within `timeout`.
std::vector<bool> Echoed(const std::vector<UniqueFd>& clients, absl::Duration timeout) {
  std::vector<pollfd> fds;
  for (const UniqueFd& fd : clients) fds.push_back({fd.fd(), POLLIN, 0});
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<bool> ready(clients.size(), false);
  while (absl::Now() < deadline) {
    const int left = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (::poll(fds.data(), fds.size(), left) <= 0) break;
    bool all = true;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents & POLLIN) {
        ready[i] = true;
        fds[i].fd = -1;  // stop watching it
      }
      all = all && ready[i];
    }
    if (all) break;
  }
  return ready;
}

TEST(EchoServerTest, OutOfDescriptorsItIdlesAndRecovers) {
  // With 24 descriptors, the server (3 standard ones, epoll, eventfd,
  // listener) runs out after about 18 connections.
  Server server = StartServer({"--listen=127.0.0.1:0"}, /*max_fds=*/24);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 30; ++i) {
    clients.push_back(Dial(server.address));  // the kernel completes the handshake
    ASSERT_TRUE(SendAll(clients.back().fd(), "x"));
  }
  std::vector<bool> served = Echoed(clients, absl::Seconds(2));
  const int served_count = static_cast<int>(std::count(served.begin(), served.end(), true));
  ASSERT_GT(served_count, 0);
  ASSERT_LT(served_count, 30) << "the descriptor limit did not bite";
  // Closing the served clients frees a descriptor for each waiting one.
  ASSERT_GE(served_count, 30 - served_count);

  // Starved: the server must not spin on accept.
  absl::StatusOr<absl::Duration> before = server.process.CpuTime();
  std::this_thread::sleep_for(std::chrono::seconds(1));  // a measuring window
  absl::StatusOr<absl::Duration> after = server.process.CpuTime();
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_LT(*after - *before, absl::Milliseconds(100)) << "busy while starved";
  EXPECT_THAT(server.process.Stderr(), HasSubstr("Too many open files"));

  // Freeing descriptors lets the waiting connections in, and they are served.
  std::vector<UniqueFd> waiting;
  for (int i = 0; i < 30; ++i) {
    if (!served[i]) waiting.push_back(std::move(clients[i]));
  }
  clients.clear();
  std::vector<bool> late = Echoed(waiting, absl::Seconds(10));
  EXPECT_EQ(std::count(late.begin(), late.end(), true), static_cast<long>(waiting.size()));
  waiting.clear();  // a stopping server waits for open connections (the drain)
  ExpectCleanExit(server);
}

}  // namespace
}  // namespace conet
