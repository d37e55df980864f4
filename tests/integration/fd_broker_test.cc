// End-to-end tests of examples/fd_broker: the real binary, driven by clients
// written with plain blocking sockets and sendmsg/recvmsg with SCM_RIGHTS
// (no conet), so the tests see exactly what any other program would.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"
#include "tests/integration/subprocess.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::ProcStatusField;
using ::conet::test::RunfilePath;
using ::conet::test::Subprocess;
using ::conet::test::ThreadsOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr size_t kMaxFds = 253;  // SCM_MAX_FD
constexpr char kHello[] = "hello from the root\n";

// A reply as the client received it.
struct Reply {
  ssize_t size = -1;  // recvmsg's result: 0 is end of stream, -1 an error
  std::string text;
  std::vector<UniqueFd> fds;
  int flags = 0;  // msg_flags
};

// Connects a blocking seqpacket socket, with send/receive timeouts so that
// no test can hang on a broker that misbehaves.
UniqueFd Connect(const SocketAddress& address) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  EXPECT_EQ(::connect(fd.fd(), address.data(), address.size()), 0)
      << address.ToString() << ": " << std::strerror(errno);
  return fd;
}

// Sends one message of `text` with copies of `fds` attached.
bool SendRequest(int socket, const std::string& text, const std::vector<int>& fds = {}) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // operator new's alignment is enough for a cmsghdr.
  std::vector<char> control;
  if (!fds.empty()) {
    const size_t payload = fds.size() * sizeof(int);
    control.assign(CMSG_SPACE(payload), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(payload);
    std::memcpy(CMSG_DATA(cmsg), fds.data(), payload);
  }
  return ::sendmsg(socket, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// Receives one message, taking ownership of every descriptor attached.
Reply ReceiveReply(int socket) {
  Reply reply;
  char data[16384];
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxFds * sizeof(int))];
  iovec iov{data, sizeof(data)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  reply.size = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  if (reply.size < 0) return reply;
  reply.flags = msg.msg_flags;
  reply.text.assign(data, static_cast<size_t>(reply.size));
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof(int));
      reply.fds.emplace_back(fd);
    }
  }
  return reply;
}

Reply RoundTrip(int socket, const std::string& request, const std::vector<int>& fds = {}) {
  EXPECT_TRUE(SendRequest(socket, request, fds)) << request << ": " << std::strerror(errno);
  return ReceiveReply(socket);
}

// Returns everything readable from `fd` until end of file.
std::string ReadAll(int fd) {
  std::string data;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n <= 0) return data;
    data.append(buffer, static_cast<size_t>(n));
  }
}

// Reports whether the pipe read end `fd` reaches end of file within
// `timeout`: every copy of its write end has been closed.
bool PipeClosedWithin(int fd, absl::Duration timeout) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return false;
  char byte;
  return ::read(fd, &byte, 1) == 0;
}

// Returns how many descriptors process `pid` has open.
int CountFds(pid_t pid) {
  DIR* dir = ::opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count;
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Pipe MakePipe() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

UniqueFd OpenOrDie(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  EXPECT_TRUE(fd.is_open()) << path << ": " << std::strerror(errno);
  return fd;
}

// A running fd_broker and the address it reported.
using Broker = ::conet::test::ListeningProcess;

class FdBrokerTest : public ::testing::Test {
 protected:
  // Builds the root: hello.txt, sub/inner.txt, sub/up -> ../hello.txt
  // (stays beneath), escape -> /etc/passwd (leads out); and a directory of
  // its own for the socket (short enough for sun_path).
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string root_template = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/root-XXXXXX");
    ASSERT_NE(::mkdtemp(root_template.data()), nullptr);
    root_ = root_template;
    // The broker becomes nobody: a root anyone may read, as a real one is.
    ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
    char socket_dir[] = "/tmp/conet-broker-XXXXXX";
    ASSERT_NE(::mkdtemp(socket_dir), nullptr);
    socket_dir_ = socket_dir;
    socket_path_ = socket_dir_ + "/broker.sock";
    std::ofstream(root_ + "/hello.txt") << kHello;
    ASSERT_EQ(::mkdir((root_ + "/sub").c_str(), 0755), 0);
    std::ofstream(root_ + "/sub/inner.txt") << "inner";
    ASSERT_EQ(::symlink("../hello.txt", (root_ + "/sub/up").c_str()), 0);
    ASSERT_EQ(::symlink("/etc/passwd", (root_ + "/escape").c_str()), 0);
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
    std::filesystem::remove_all(socket_dir_, ignored);
  }

  // Starts the broker on the socket path and root, plus `flags`. Every
  // broker here has --drain-timeout=0s: SIGTERM ends the clients a test
  // still holds at once (the drain is lifecycle_test's).
  Broker StartBroker(std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), {RunfilePath("examples/fd_broker"), "--listen=unix:" + socket_path_,
                                 "--root=" + root_, "--drain-timeout=0s"});
    return StartWith(flags);
  }

  static Broker StartWith(const std::vector<std::string>& argv) {
    return ::conet::test::StartListening(argv);
  }

  // Stops the broker with SIGTERM and expects a clean exit.
  static void ExpectCleanExit(Broker& broker) {
    absl::StatusOr<int> status = broker.process.Stop(SIGTERM);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(*status, 0) << broker.process.Stderr();
  }

  std::string root_;
  std::string socket_dir_;
  std::string socket_path_;
};

TEST_F(FdBrokerTest, OpensAFileAndSendsOneReadOnlyDescriptor) {
  Broker broker = StartBroker();
  EXPECT_EQ(broker.address.ToString(), "unix:" + socket_path_);
  UniqueFd client = Connect(broker.address);
  Reply reply = RoundTrip(client.fd(), "OPEN hello.txt");
  EXPECT_EQ(reply.text, "OK");
  EXPECT_EQ(reply.flags & (MSG_CTRUNC | MSG_TRUNC), 0);
  ASSERT_EQ(reply.fds.size(), 1u);
  const int fd = reply.fds[0].fd();
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << "MSG_CMSG_CLOEXEC";
  const int flags = ::fcntl(fd, F_GETFL);
  EXPECT_EQ(flags & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(flags & O_NONBLOCK, 0);
  EXPECT_EQ(ReadAll(fd), kHello);
  EXPECT_LT(::write(fd, "x", 1), 0);
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, OpensPathsThatStayBeneathTheRoot) {
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  for (const char* request : {"OPEN sub/inner.txt\n", "OPEN sub/../sub/inner.txt"}) {
    Reply reply = RoundTrip(client.fd(), request);
    EXPECT_EQ(reply.text, "OK") << request;
    ASSERT_EQ(reply.fds.size(), 1u) << request;
    EXPECT_EQ(ReadAll(reply.fds[0].fd()), "inner") << request;
  }
  Reply up = RoundTrip(client.fd(), "OPEN sub/up");  // a symlink that stays inside
  EXPECT_EQ(up.text, "OK");
  ASSERT_EQ(up.fds.size(), 1u);
  EXPECT_EQ(ReadAll(up.fds[0].fd()), kHello);
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, RefusesPathsOutsideTheRootAndMissingFiles) {
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  for (const char* request : {"OPEN ../x", "OPEN /etc/passwd", "OPEN escape",
                              "OPEN sub/../../hello.txt", "OPEN /proc/self/fd/0"}) {
    Reply reply = RoundTrip(client.fd(), request);
    EXPECT_EQ(reply.text, "ERR path escapes root") << request;
    EXPECT_TRUE(reply.fds.empty()) << request;
  }
  Reply missing = RoundTrip(client.fd(), "OPEN missing.txt");
  EXPECT_EQ(missing.text, "ERR No such file or directory");
  EXPECT_TRUE(missing.fds.empty());
  Reply empty = RoundTrip(client.fd(), "OPEN ");
  EXPECT_THAT(empty.text, StartsWith("ERR "));
  EXPECT_TRUE(empty.fds.empty());
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, DescribesEachKindInOrder) {
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  UniqueFd file = OpenOrDie(root_ + "/hello.txt", O_RDONLY);
  UniqueFd dir = OpenOrDie(root_, O_RDONLY | O_DIRECTORY);
  Pipe pipe = MakePipe();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd socket_a(pair[0]), socket_b(pair[1]);
  UniqueFd null = OpenOrDie("/dev/null", O_RDONLY);
  Reply reply =
      RoundTrip(client.fd(), "DESCRIBE", {file.fd(), dir.fd(), pipe.read.fd(), socket_a.fd()});
  EXPECT_EQ(reply.text, absl::StrCat("OK file:", sizeof(kHello) - 1, " dir pipe socket"));
  EXPECT_TRUE(reply.fds.empty());
  Reply other = RoundTrip(client.fd(), "DESCRIBE\n", {null.fd(), pipe.write.fd()});
  EXPECT_EQ(other.text, "OK other pipe");
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, DescribesTheMostDescriptorsOneMessageCarries) {
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  Pipe pipe = MakePipe();
  UniqueFd file = OpenOrDie(root_ + "/hello.txt", O_RDONLY);
  std::vector<int> fds;
  std::vector<std::string> kinds;
  for (size_t i = 0; i < kMaxFds; ++i) {
    fds.push_back(i % 2 == 0 ? pipe.read.fd() : file.fd());
    kinds.push_back(i % 2 == 0 ? "pipe" : absl::StrCat("file:", sizeof(kHello) - 1));
  }
  Reply reply = RoundTrip(client.fd(), "DESCRIBE", fds);
  EXPECT_EQ(reply.text, absl::StrCat("OK ", absl::StrJoin(kinds, " ")));
  EXPECT_EQ(std::vector<std::string>(absl::StrSplit(reply.text, ' ')).size(), kMaxFds + 1);
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, ClosesWhatItReceivedBeforeReplying) {
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  for (const char* request : {"DESCRIBE", "OPEN hello.txt", "bogus"}) {
    Pipe pipe = MakePipe();
    const int write_end = pipe.write.fd();
    ASSERT_TRUE(SendRequest(client.fd(), request, {write_end})) << request;
    pipe.write.Reset();  // the broker now holds the last copy
    Reply reply = ReceiveReply(client.fd());
    EXPECT_THAT(reply.text, StartsWith(std::string(request) == "DESCRIBE" ? "OK" : "ERR"))
        << request;
    EXPECT_TRUE(reply.fds.empty()) << request;
    EXPECT_TRUE(PipeClosedWithin(pipe.read.fd(), absl::Seconds(5)))
        << request << ": the broker kept the descriptor";
  }
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, BadRequestsGetErrorsAndTheConnectionStaysUsable) {
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  Pipe pipe = MakePipe();
  const std::vector<std::pair<std::string, std::vector<int>>> bad = {
      {"garbage", {}},
      {"DESCRIBE", {}},
      {"DESCRIBE extra", {pipe.read.fd()}},
      {"OPEN hello.txt", {pipe.read.fd()}},
      {std::string(4097, 'x'), {}},
      {std::string(5000, 'x'), {}},
      {std::string(5000, 'x'), {pipe.read.fd(), pipe.write.fd()}},
      {absl::StrCat("OPEN ", std::string(4092, 'a')), {}},  // 4097 bytes
      {std::string("OPEN a\0b", 8), {}},
  };
  for (const auto& [request, fds] : bad) {
    Reply reply = RoundTrip(client.fd(), request, fds);
    EXPECT_THAT(reply.text, StartsWith("ERR ")) << request.substr(0, 40);
    EXPECT_TRUE(reply.fds.empty()) << request.substr(0, 40);
    Reply good = RoundTrip(client.fd(), "OPEN hello.txt");
    EXPECT_EQ(good.text, "OK") << "after " << request.substr(0, 40);
    EXPECT_EQ(good.fds.size(), 1u);
  }
  EXPECT_EQ(RoundTrip(client.fd(), "garbage").text, "ERR unknown request");
  EXPECT_EQ(RoundTrip(client.fd(), "DESCRIBE").text, "ERR DESCRIBE needs descriptors");
  EXPECT_EQ(RoundTrip(client.fd(), std::string(5000, 'x')).text, "ERR request too long");
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt", {pipe.read.fd()}).text,
            "ERR unexpected descriptors");
  // A request of exactly 4096 bytes is not too long (just not a file).
  EXPECT_EQ(RoundTrip(client.fd(), absl::StrCat("OPEN ", std::string(4091, 'a'))).text,
            "ERR File name too long");
  // Descriptors with no data byte: a real message, not end of stream.
  EXPECT_EQ(RoundTrip(client.fd(), "", {pipe.read.fd()}).text, "ERR unknown request");
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "OK");
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, RefusesAUidNotAllowed) {
  Broker broker = StartBroker({absl::StrCat("--allow-uid=", ::getuid() + 12345)});
  UniqueFd client = Connect(broker.address);
  Reply refusal = ReceiveReply(client.fd());
  EXPECT_EQ(refusal.text, "ERR permission denied");
  EXPECT_EQ(ReceiveReply(client.fd()).size, 0) << "not disconnected";
  // Still accepting (and refusing) after that.
  UniqueFd again = Connect(broker.address);
  EXPECT_EQ(ReceiveReply(again.fd()).text, "ERR permission denied");
  ExpectCleanExit(broker);
  EXPECT_THAT(broker.process.Stderr(), HasSubstr("fd_broker: "));
  EXPECT_THAT(broker.process.Stderr(), HasSubstr(absl::StrCat("uid ", ::getuid())));
}

TEST_F(FdBrokerTest, AllowUidMayBeRepeatedOrAList) {
  const std::string other = absl::StrCat(::getuid() + 12345);
  const std::string mine = absl::StrCat(::getuid());
  for (const std::vector<std::string>& flags :
       {std::vector<std::string>{"--allow-uid=" + other, "--allow-uid=" + mine},
        std::vector<std::string>{"--allow-uid=" + mine, "--allow-uid=" + other},
        std::vector<std::string>{absl::StrCat("--allow-uid=", other, ",", mine)}}) {
    Broker broker = StartBroker(flags);
    UniqueFd client = Connect(broker.address);
    EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "OK") << absl::StrJoin(flags, " ");
    ExpectCleanExit(broker);
  }
}

// One flood client: `rounds` rounds of a DESCRIBE with `fds` (whose reply
// should be `expected`) and an OPEN (so that a descriptor the broker opens
// and fails to close shows up too); returns how many replies were wrong.
int FloodClient(const SocketAddress& address, const std::vector<int>& fds,
                const std::string& expected, int rounds) {
  UniqueFd client = Connect(address);
  int wrong = 0;
  for (int i = 0; i < rounds; ++i) {
    if (!SendRequest(client.fd(), "DESCRIBE", fds)) return wrong + 2 * (rounds - i);
    Reply described = ReceiveReply(client.fd());
    if (described.text != expected || !described.fds.empty()) ++wrong;
    if (!SendRequest(client.fd(), "OPEN hello.txt")) return wrong + 2 * (rounds - i) - 1;
    Reply opened = ReceiveReply(client.fd());
    if (opened.text != "OK" || opened.fds.size() != 1) ++wrong;
  }
  return wrong;
}

TEST_F(FdBrokerTest, SixtyFourClientsFloodItAndNoDescriptorLeaks) {
  Broker broker = StartBroker();
  UniqueFd file = OpenOrDie(root_ + "/hello.txt", O_RDONLY);
  Pipe pipe = MakePipe();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd socket_a(pair[0]), socket_b(pair[1]);
  const std::vector<int> fds = {file.fd(), pipe.write.fd(), socket_b.fd()};
  const std::string expected = absl::StrCat("OK file:", sizeof(kHello) - 1, " pipe socket");

  // One connection held open across the flood: once it has had a round trip
  // (an OPEN and a DESCRIBE), whatever the broker allocates lazily exists.
  UniqueFd warm = Connect(broker.address);
  ASSERT_EQ(RoundTrip(warm.fd(), "OPEN hello.txt").text, "OK");
  ASSERT_EQ(RoundTrip(warm.fd(), "DESCRIBE", fds).text, expected);
  const int before = CountFds(broker.process.pid());
  ASSERT_GT(before, 0);

  std::atomic<int> wrong{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i) {
    clients.emplace_back(
        [&] { wrong += FloodClient(broker.address, fds, expected, /*rounds=*/50); });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(wrong.load(), 0);

  // The broker closes connections as it notices them end: poll, bounded.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  int after = CountFds(broker.process.pid());
  while (after != before && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    after = CountFds(broker.process.pid());
  }
  EXPECT_EQ(after, before) << "descriptors leaked by the broker";
  EXPECT_EQ(RoundTrip(warm.fd(), "DESCRIBE", fds).text, expected);
  ExpectCleanExit(broker);
}

// The broker as the unprivileged user nobody (root is exempt from the
// kernel's limit on descriptors in flight), with RLIMIT_NOFILE `max_fds`,
// which is also that limit: run from a copy of the binary that nobody may
// execute, serving a root of its own, admitting root's clients.
class NobodyBrokerTest : public FdBrokerTest {
 protected:
  Broker StartAsNobody(int max_fds) {
    const std::string binary = dir_.Path("fd_broker");
    std::filesystem::copy_file(RunfilePath("examples/fd_broker"), binary);
    ::chmod(binary.c_str(), 0755);
    const std::string root = dir_.Path("root");
    ::mkdir(root.c_str(), 0755);
    std::ofstream(root + "/f") << "f";
    ::chmod((root + "/f").c_str(), 0644);
    static int counter = 0;
    return ::conet::test::StartListening(
        {"/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", binary,
         absl::StrCat("--listen=unix:@conet-broker-nobody-", ::getpid(), "-", counter++),
         "--root=" + root, "--allow-uid=0", "--drain-timeout=0s"},
        max_fds);
  }

  // Connects and sends OPEN requests without ever reading a reply, until
  // its socket's buffer is full (or 1000 were sent).
  static UniqueFd Flood(const SocketAddress& address) {
    UniqueFd client = Connect(address);
    ::fcntl(client.fd(), F_SETFL, O_NONBLOCK);
    for (int i = 0; i < 1000; ++i) {
      if (::send(client.fd(), "OPEN f", 6, MSG_NOSIGNAL) != 6) break;
    }
    return client;
  }

  // Waits (bounded) for `text` on the broker's stderr.
  static bool StderrShows(const Broker& broker, const std::string& text) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (absl::StrContains(broker.process.Stderr(), text)) return true;
      absl::SleepFor(absl::Milliseconds(10));
    }
    return false;
  }

  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to start the broker as nobody";
    FdBrokerTest::SetUp();
  }

  ::conet::test::SharedTempDir dir_;
};

TEST_F(NobodyBrokerTest, AClientThatNeverReadsCannotStarveTheOthers) {
  // 128 descriptors may be in flight for the broker's uid; one client that
  // never reads may hold only a few dozen of them.
  Broker broker = StartAsNobody(128);
  UniqueFd flood = Flood(broker.address);
  UniqueFd innocent = Connect(broker.address);
  for (int i = 0; i < 5; ++i) {
    Reply reply = RoundTrip(innocent.fd(), "OPEN f");
    EXPECT_EQ(reply.text, "OK") << "size " << reply.size << "; " << broker.process.Stderr();
    EXPECT_EQ(reply.fds.size(), 1u);
  }
  ExpectCleanExit(broker);
}

TEST_F(NobodyBrokerTest, WhenNoMoreDescriptorsMayBeInFlightTheClientIsToldAndStays) {
  Broker broker = StartAsNobody(64);
  std::vector<UniqueFd> floods;
  for (int i = 0; i < 6; ++i) floods.push_back(Flood(broker.address));
  ASSERT_TRUE(StderrShows(broker, "too many descriptors in flight")) << broker.process.Stderr();
  EXPECT_THAT(broker.process.Stderr(), HasSubstr("client pid " + std::to_string(::getpid())));
  UniqueFd innocent = Connect(broker.address);
  Reply refused = RoundTrip(innocent.fd(), "OPEN f");
  EXPECT_EQ(refused.text, "ERR too many descriptors in flight, try again later");
  EXPECT_TRUE(refused.fds.empty());
  // Once the flooders go, their descriptors are no longer in flight.
  floods.clear();
  Reply opened = RoundTrip(innocent.fd(), "OPEN f");
  EXPECT_EQ(opened.text, "OK");
  EXPECT_EQ(opened.fds.size(), 1u);
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, SigtermExitsCleanlyAndRemovesTheSocketFile) {
  Broker broker = StartBroker({"--sandbox=off"});
  struct stat st;
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660);
  UniqueFd client = Connect(broker.address);
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "OK");
  ExpectCleanExit(broker);
  EXPECT_NE(::lstat(socket_path_.c_str(), &st), 0) << "socket file left behind";
  EXPECT_NE(::lstat((socket_path_ + ".lock").c_str(), &st), 0) << "lock file left behind";
  EXPECT_EQ(ReceiveReply(client.fd()).size, 0);  // and the client sees the end
}

// Sandboxed, the broker may no longer remove its socket file (nor any
// other): the file stays, refusing connections, and the next start
// reclaims it.
TEST_F(FdBrokerTest, ASandboxedBrokerLeavesItsSocketFileForTheNextStart) {
  {
    Broker broker = StartBroker();
    ExpectCleanExit(broker);
  }
  struct stat st;
  ASSERT_EQ(::lstat(socket_path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  const SocketAddress address = *SocketAddress::Parse("unix:" + socket_path_);
  EXPECT_NE(::connect(probe.fd(), address.data(), address.size()), 0);
  EXPECT_EQ(errno, ECONNREFUSED);
  Broker next = StartBroker();
  UniqueFd client = Connect(next.address);
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "OK");
  ExpectCleanExit(next);
}

// As root, the broker becomes nobody and locks itself down once it
// listens, every thread of it; and it still serves.
TEST_F(FdBrokerTest, SandboxesItselfAsProcStatusShows) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: the identity and the bounding set";
  Broker broker = StartBroker({"--sandbox=strict"});
  UniqueFd client = Connect(broker.address);
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN sub/inner.txt").text, "OK");
  const pid_t pid = broker.process.pid();
  const std::vector<pid_t> threads = ThreadsOf(pid);
  // Main and the loop's (and a sanitizer's own, under ThreadSanitizer).
  EXPECT_GE(threads.size(), 2u);
  for (pid_t tid : threads) {
    EXPECT_EQ(ProcStatusField(pid, tid, "NoNewPrivs"), "1") << tid;
    EXPECT_EQ(ProcStatusField(pid, tid, "Seccomp"), "2") << tid;
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
      EXPECT_EQ(ProcStatusField(pid, tid, set), "0000000000000000") << set << " of " << tid;
    }
  }
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  const uid_t uid = nobody->pw_uid;
  EXPECT_EQ(ProcStatusField(pid, "Uid"), absl::StrCat(uid, "\t", uid, "\t", uid, "\t", uid));
  EXPECT_EQ(ProcStatusField(pid, "Groups"), "");
  const std::string said = broker.process.Stderr();
  EXPECT_THAT(said, HasSubstr("fd_broker: sandbox: enforced identity (nobody uid "));
  EXPECT_THAT(said, HasSubstr("limits (nproc 0, core 0, nofile "));
  EXPECT_THAT(said, HasSubstr("read-only beneath " + root_));
  EXPECT_THAT(said, HasSubstr("seccomp ("));
  EXPECT_THAT(said, HasSubstr("; lacking: nothing\n"));
  EXPECT_THAT(said, Not(HasSubstr("warning")));
  ExpectCleanExit(broker);
}

// A root only root may enter is closed to the broker once it is nobody:
// it says so at start, and OPEN is refused.
TEST_F(FdBrokerTest, ARootTheUserMayNotSearchIsWarnedOf) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
  ASSERT_EQ(::chmod(root_.c_str(), 0700), 0);
  Broker broker = StartBroker();
  UniqueFd client = Connect(broker.address);
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "ERR Permission denied");
  const passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  EXPECT_THAT(broker.process.Stderr(),
              HasSubstr(absl::StrCat("fd_broker: warning: --root=", root_, ": uid ", nobody->pw_uid,
                                     " may not search it (Permission denied)")));
  ExpectCleanExit(broker);
}

TEST_F(FdBrokerTest, SandboxOffAppliesNothing) {
  Broker broker = StartBroker({"--sandbox=off"});
  UniqueFd client = Connect(broker.address);
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "OK");
  EXPECT_EQ(ProcStatusField(broker.process.pid(), "NoNewPrivs"), "0");
  EXPECT_EQ(ProcStatusField(broker.process.pid(), "Seccomp"), "0");
  EXPECT_THAT(broker.process.Stderr(), HasSubstr("fd_broker: sandbox: off\n"));
  ExpectCleanExit(broker);
}

// With Landlock and seccomp refused from outside, best effort says so and
// serves; strict exits 1 naming the layer.
TEST_F(FdBrokerTest, TheReportSaysWhatWasLackingAndStrictExitsOne) {
  const std::string refuse = RunfilePath("tests/integration/refuse_sandbox");
  const std::string broker_path = RunfilePath("examples/fd_broker");
  Broker broker = StartWith({refuse, broker_path, "--listen=unix:" + socket_path_,
                             "--root=" + root_, "--drain-timeout=0s"});
  UniqueFd client = Connect(broker.address);
  EXPECT_EQ(RoundTrip(client.fd(), "OPEN hello.txt").text, "OK");
  EXPECT_THAT(broker.process.Stderr(),
              HasSubstr("; lacking: landlock (the kernel has no Landlock), seccomp (libseccomp "
                        "found no seccomp(2) with thread sync, API level "));
  ExpectCleanExit(broker);

  absl::StatusOr<Subprocess> strict =
      Subprocess::Start({refuse, broker_path, "--listen=unix:" + socket_path_, "--root=" + root_,
                         "--sandbox=strict"});
  ASSERT_TRUE(strict.ok()) << strict.status();
  EXPECT_FALSE(strict->WaitListening().ok());
  absl::StatusOr<int> status = strict->Stop(SIGKILL);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 1);
  EXPECT_THAT(strict->Stderr(),
              HasSubstr("fd_broker: sandbox (strict): landlock could not be applied: the kernel "
                        "has no Landlock\n"));
}

TEST_F(FdBrokerTest, ListensOnAnAbstractName) {
  const std::string name = absl::StrCat("unix:@conet-fd-broker-test-", ::getpid());
  Broker broker = StartWith({RunfilePath("examples/fd_broker"), "--listen=" + name,
                             "--root=" + root_, "--drain-timeout=0s"});
  EXPECT_EQ(broker.address.ToString(), name);
  UniqueFd client = Connect(broker.address);
  Reply reply = RoundTrip(client.fd(), "OPEN hello.txt");
  EXPECT_EQ(reply.text, "OK");
  EXPECT_EQ(reply.fds.size(), 1u);
  ExpectCleanExit(broker);
}

// Runs the broker with `flags`, expecting it to exit by itself.
void ExpectExit(const std::vector<std::string>& flags, int code) {
  std::vector<std::string> argv = flags;
  argv.insert(argv.begin(), RunfilePath("examples/fd_broker"));
  absl::StatusOr<Subprocess> process = Subprocess::Start(argv);
  ASSERT_TRUE(process.ok());
  const std::string what = absl::StrJoin(flags, " ");
  EXPECT_FALSE(process->WaitListening().ok()) << what;
  absl::StatusOr<int> status = process->Stop(SIGKILL);
  // Already exited by itself: Stop's SIGKILL found nothing to kill.
  ASSERT_TRUE(status.ok()) << what << ": " << status.status();
  EXPECT_EQ(*status, code) << what;
  if (code != 0) {
    EXPECT_THAT(process->Stderr(), HasSubstr("fd_broker: ")) << what;
  }
}

TEST_F(FdBrokerTest, BadFlagsExitWithAnError) {
  const std::string listen = "--listen=unix:" + socket_path_;
  const std::string root = "--root=" + root_;
  ExpectExit({"--help"}, 0);
  ExpectExit({}, 2);
  ExpectExit({root}, 2);
  ExpectExit({listen}, 2);
  ExpectExit({"--listen=127.0.0.1:0", root}, 2);
  ExpectExit({"--listen=nonsense", root}, 2);
  ExpectExit({listen, root, "--allow-uid=abc"}, 2);
  ExpectExit({listen, root, "--allow-uid="}, 2);
  ExpectExit({listen, root, "--allow-uid=1,"}, 2);
  ExpectExit({listen, root, "--bogus=1"}, 2);
  ExpectExit({listen, root, "--sandbox=on"}, 2);
  if (::geteuid() == 0) ExpectExit({listen, root, "--user=conet-no-such-user"}, 1);
  ExpectExit({listen, "--root=" + root_ + "/missing"}, 1);
  ExpectExit({listen, "--root=" + root_ + "/hello.txt"}, 1);
}

}  // namespace
}  // namespace conet
