#include "ipc/handoff.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ipc/unix_socket.h"
#include "net/stream_socket.h"
#include "net/testing.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::conet::test::SharedTempDir;

// ASSERT_TRUE for a coroutine (gtest's returns void).
#define CO_ASSERT_TRUE(condition)           \
  if (!(condition)) {                       \
    ADD_FAILURE() << "failed: " #condition; \
    co_return;                              \
  }

// An abstract upgrade address unique to this test and process.
SocketAddress UpgradeAddress(const std::string& test) {
  return *SocketAddress::Parse(absl::StrCat("unix:@conet-handoff-", test, "-", ::getpid()));
}

bool SameFile(int a, int b) {
  struct stat sa, sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

// What the older side saw.
struct Older {
  absl::Status result;
  std::vector<absl::Status> failures;
  std::vector<pid_t> handed_to;
};

// Answers at `listener` until a successor is ready or `stop`.
Task<void> Answer(SeqPacketListener* listener, std::vector<OfferedFd> offer, Older* older,
                  std::stop_token stop, absl::Duration timeout = absl::Seconds(10),
                  std::optional<uid_t> successor_uid = std::nullopt) {
  AnswerOptions options;
  options.timeout = timeout;
  options.successor_uid = successor_uid;
  options.on_failure = [older](const absl::Status& failure) { older->failures.push_back(failure); };
  options.on_handing_over = [older](pid_t pid) { older->handed_to.push_back(pid); };
  const Cancellation cancel(stop, absl::Now() + absl::Seconds(20));
  older->result =
      co_await AnswerSuccessors(*listener, std::move(offer), std::move(options), cancel);
}

TEST(TakeoverTest, NobodyAnsweringIsNoTakeover) {
  FdLeakCheck leaks;
  SharedTempDir dir;
  auto run = [&]() -> Task<void> {
    absl::StatusOr<std::optional<Takeover>> abstract =
        co_await Takeover::Begin(UpgradeAddress("nobody"), Within(absl::Seconds(5)));
    CO_ASSERT_TRUE(abstract.ok());
    EXPECT_FALSE(abstract->has_value());
    absl::StatusOr<std::optional<Takeover>> path = co_await Takeover::Begin(
        *SocketAddress::Parse("unix:" + dir.Path("none.sock")), Within(absl::Seconds(5)));
    CO_ASSERT_TRUE(path.ok());
    EXPECT_FALSE(path->has_value());
  };
  RunTask(run());
}

// The successor gets every offered descriptor, named, in order; its READY
// ends the older side's answering with OK.
Task<void> HandOverTwo(SocketAddress address) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SeqPacketListener listener, SeqPacketListener::Bind(address));
  CONET_CO_ASSERT_OK_AND_ASSIGN(StreamListener tcp,
                                StreamListener::Bind(SocketAddress::Ipv4Loopback(0)));
  std::vector<UniqueFd> pipe = test::PipeReadEnds(1);
  std::vector<OfferedFd> offer = {{"listen", tcp.fd()}, {"log", pipe[0].fd()}};
  Older older;
  std::stop_source never;
  auto successor = [&]() -> Task<void> {
    absl::StatusOr<std::optional<Takeover>> takeover =
        co_await Takeover::Begin(address, Within(absl::Seconds(5)));
    CONET_CO_ASSERT_OK(takeover.status());
    CO_ASSERT_TRUE(takeover->has_value());
    std::vector<NamedFd>& fds = (*takeover)->fds();
    CO_ASSERT_TRUE(fds.size() == 2u);
    EXPECT_EQ(fds[0].name, "listen");
    EXPECT_TRUE(SameFile(fds[0].fd.fd(), tcp.fd()));
    EXPECT_EQ(fds[1].name, "log");
    EXPECT_TRUE(SameFile(fds[1].fd.fd(), pipe[0].fd()));
    EXPECT_EQ(::fcntl(fds[0].fd.fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    EXPECT_EQ((*takeover)->older_pid(), ::getpid());
    CONET_CO_ASSERT_OK(co_await (*takeover)->Ready());
  };
  co_await WhenAll(Answer(&listener, offer, &older, never.get_token()), successor());
  EXPECT_TRUE(older.result.ok()) << older.result;
  EXPECT_TRUE(older.failures.empty());
  EXPECT_EQ(older.handed_to, std::vector<pid_t>{::getpid()});
}

TEST(HandoffTest, TheSuccessorGetsEveryDescriptorNamedAndItsReadyEndsTheAnswering) {
  FdLeakCheck leaks;
  RunTask(HandOverTwo(UpgradeAddress("two")));
}

// Connects raw, says `hello`, receives the answer (closing any descriptor),
// then sends `then` unless empty. Returns the answer's text.
std::string RawSuccessor(const SocketAddress& address, const std::string& hello,
                         const std::string& then) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  timeval bound{.tv_sec = 10, .tv_usec = 0};
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
  if (::connect(fd.fd(), address.data(), address.size()) != 0) return "connect failed";
  // It may fail: an older side that refuses hangs up at once, its answer
  // already queued for us.
  (void)::send(fd.fd(), hello.data(), hello.size(), MSG_NOSIGNAL);
  char buffer[4096];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  iovec io{buffer, sizeof buffer};
  msghdr message{};
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(fd.fd(), &message, MSG_CMSG_CLOEXEC);
  if (n < 0) return "recvmsg failed";
  for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int passed;
      std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
      ::close(passed);
    }
  }
  if (!then.empty()) (void)::send(fd.fd(), then.data(), then.size(), MSG_NOSIGNAL);
  return std::string(buffer, static_cast<size_t>(n));
}

// Runs `action` in a forked child (raw calls block: the older side runs on
// the loop, each raw successor in a child of its own); returns its pid.
int InChild(const std::function<bool()>& action) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(action() ? 0 : 1);
  return child;
}

int WaitChild(pid_t child) {
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Failing successors, one after another (each a forked child), then a
// good one: each failure is reported and the older side goes on answering.
Task<void> FailuresThenSuccess(SocketAddress address) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SeqPacketListener listener, SeqPacketListener::Bind(address));
  std::vector<UniqueFd> pipe = test::PipeReadEnds(1);
  std::vector<OfferedFd> offer = {{"listen", pipe[0].fd()}};
  Older older;
  std::stop_source stop;
  std::vector<pid_t> children;
  // Goes away once it has the descriptors.
  children.push_back(InChild(
      [&] { return absl::StartsWith(RawSuccessor(address, "UPGRADE 7", ""), "HANDOFF listen"); }));
  auto drive = [&]() -> Task<void> {
    // One at a time: each waits until the older side has judged the last.
    auto failures = [&](size_t n) -> Task<void> {
      const absl::Time give_up = absl::Now() + absl::Seconds(20);
      while (older.failures.size() < n && absl::Now() < give_up) {
        (void)co_await Sleep(absl::Milliseconds(2));
      }
    };
    co_await failures(1);
    // Says something else than READY.
    children.push_back(InChild(
        [&] { return absl::StartsWith(RawSuccessor(address, "UPGRADE 8", "READY?"), "HANDOFF"); }));
    co_await failures(2);
    // A hello that is not one.
    children.push_back(InChild([&] {
      (void)RawSuccessor(address, "HELLO", "");
      return true;
    }));
    co_await failures(3);
    // Stalls: never answers READY (the older side's timeout is 200 ms).
    children.push_back(InChild([&] {
      UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
      if (::connect(fd.fd(), address.data(), address.size()) != 0) return false;
      (void)::send(fd.fd(), "UPGRADE 9", 9, MSG_NOSIGNAL);
      char byte;
      timeval bound{.tv_sec = 10, .tv_usec = 0};
      ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound);
      (void)::recv(fd.fd(), &byte, 1, 0);        // the HANDOFF
      return ::recv(fd.fd(), &byte, 1, 0) == 0;  // then end of stream: given up on
    }));
    co_await failures(4);
    children.push_back(InChild([&] {
      return absl::StartsWith(RawSuccessor(address, "UPGRADE 10", "READY"), "HANDOFF listen");
    }));
  };
  co_await WhenAll(Answer(&listener, offer, &older, stop.get_token(), absl::Milliseconds(200)),
                   drive());
  for (pid_t child : children) EXPECT_EQ(WaitChild(child), 0);
  EXPECT_TRUE(older.result.ok()) << older.result;
  CO_ASSERT_TRUE(older.failures.size() == 4u);
  EXPECT_TRUE(absl::StrContains(older.failures[0].message(), "went away")) << older.failures[0];
  EXPECT_TRUE(absl::StrContains(older.failures[1].message(), "READY?")) << older.failures[1];
  EXPECT_TRUE(absl::StrContains(older.failures[2].message(), "expected UPGRADE"))
      << older.failures[2];
  EXPECT_TRUE(absl::IsDeadlineExceeded(older.failures[3])) << older.failures[3];
  EXPECT_EQ(older.handed_to, (std::vector<pid_t>{7, 8, 9, 10}));
}

TEST(HandoffTest, FailingSuccessorsAreReportedAndTheNextIsAnswered) {
  FdLeakCheck leaks;
  RunTask(FailuresThenSuccess(UpgradeAddress("failures")));
}

// Becomes nobody in a forked child (which then runs `action`).
bool BecomeNobody() {
  const passwd* nobody = ::getpwnam("nobody");
  return nobody != nullptr && ::setgroups(0, nullptr) == 0 && ::setgid(nobody->pw_gid) == 0 &&
         ::setuid(nobody->pw_uid) == 0;
}

Task<void> RefuseAnotherUidsSuccessor(SocketAddress address) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SeqPacketListener listener, SeqPacketListener::Bind(address));
  std::vector<UniqueFd> pipe = test::PipeReadEnds(1);
  std::vector<OfferedFd> offer = {{"listen", pipe[0].fd()}};
  Older older;
  std::stop_source stop;
  const pid_t child = InChild([&] {
    return BecomeNobody() && RawSuccessor(address, "UPGRADE 1", "READY") == "ERR permission denied";
  });
  auto stop_after_failure = [&]() -> Task<void> {
    const absl::Time give_up = absl::Now() + absl::Seconds(20);
    while (older.failures.empty() && absl::Now() < give_up) {
      (void)co_await Sleep(absl::Milliseconds(2));
    }
    stop.request_stop();
  };
  co_await WhenAll(Answer(&listener, offer, &older, stop.get_token()), stop_after_failure());
  EXPECT_EQ(WaitChild(child), 0);
  EXPECT_TRUE(absl::IsCancelled(older.result)) << older.result;
  CO_ASSERT_TRUE(older.failures.size() == 1u);
  EXPECT_TRUE(absl::IsPermissionDenied(older.failures[0])) << older.failures[0];
  EXPECT_TRUE(older.handed_to.empty());
}

TEST(HandoffTest, ASuccessorOfAnotherUidIsRefusedAndGetsNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
  FdLeakCheck leaks;
  RunTask(RefuseAnotherUidsSuccessor(UpgradeAddress("uid")));
}

// An answerer that started as another uid (and changed identity since)
// names that uid: a successor of its present uid is refused.
Task<void> RefuseASuccessorOfAnotherUidThanNamed(SocketAddress address) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SeqPacketListener listener, SeqPacketListener::Bind(address));
  std::vector<UniqueFd> pipe = test::PipeReadEnds(1);
  std::vector<OfferedFd> offer = {{"listen", pipe[0].fd()}};
  Older older;
  std::stop_source stop;
  auto successor = [&]() -> Task<void> {
    absl::StatusOr<std::optional<Takeover>> takeover =
        co_await Takeover::Begin(address, Within(absl::Seconds(5)));
    EXPECT_TRUE(absl::IsPermissionDenied(takeover.status())) << takeover.status();
    stop.request_stop();
  };
  const uid_t named = ::geteuid() + 12345;
  co_await WhenAll(Answer(&listener, offer, &older, stop.get_token(), absl::Seconds(10), named),
                   successor());
  CO_ASSERT_TRUE(older.failures.size() == 1u);
  EXPECT_TRUE(absl::IsPermissionDenied(older.failures[0])) << older.failures[0];
  EXPECT_TRUE(absl::StrContains(older.failures[0].message(), absl::StrCat(", not ", named)))
      << older.failures[0];
  EXPECT_TRUE(older.handed_to.empty());
}

TEST(HandoffTest, ASuccessorMustRunAsTheUidNamed) {
  FdLeakCheck leaks;
  RunTask(RefuseASuccessorOfAnotherUidThanNamed(UpgradeAddress("named-uid")));
}

// An older instance of another uid (a squatter on the name) is refused by
// the successor before it says anything.
TEST(TakeoverTest, AnOlderInstanceOfAnotherUidIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody";
  FdLeakCheck leaks;
  const SocketAddress address = UpgradeAddress("squatter");
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    ::alarm(20);
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!BecomeNobody() || ::bind(fd.fd(), address.data(), address.size()) != 0 ||
        ::listen(fd.fd(), 4) != 0) {
      ::_exit(1);
    }
    (void)::write(ready[1], "x", 1);
    UniqueFd peer(::accept4(fd.fd(), nullptr, nullptr, SOCK_CLOEXEC));
    char byte;
    // The successor says nothing: it hangs up.
    ::_exit(::recv(peer.fd(), &byte, 1, 0) == 0 ? 0 : 1);
  }
  ::close(ready[1]);
  char byte;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  auto run = [&]() -> Task<void> {
    absl::StatusOr<std::optional<Takeover>> takeover =
        co_await Takeover::Begin(address, Within(absl::Seconds(5)));
    EXPECT_TRUE(absl::IsPermissionDenied(takeover.status())) << takeover.status();
    EXPECT_TRUE(absl::StrContains(takeover.status().message(), "uid 65534"));
  };
  RunTask(run());
  EXPECT_EQ(WaitChild(child), 0);
}

// A malformed HANDOFF (fewer names than descriptors) is refused and the
// descriptors that came are closed.
TEST(TakeoverTest, AMalformedHandoffIsRefusedAndItsDescriptorsClosed) {
  FdLeakCheck leaks;
  const SocketAddress address = UpgradeAddress("malformed");
  auto run = [&]() -> Task<void> {
    CONET_CO_ASSERT_OK_AND_ASSIGN(SeqPacketListener listener, SeqPacketListener::Bind(address));
    std::vector<UniqueFd> pipes = test::PipeReadEnds(2);
    auto older = [&]() -> Task<void> {
      CONET_CO_ASSERT_OK_AND_ASSIGN(UnixSocket successor, co_await listener.Accept());
      char buffer[64];
      (void)co_await successor.Receive(buffer);
      const std::string handoff = "HANDOFF listen";
      std::vector<int> fds = test::RawFds(pipes);
      (void)co_await successor.SendFds(handoff, fds);
      (void)co_await successor.Receive(buffer);  // until it hangs up
    };
    auto newer = [&]() -> Task<void> {
      absl::StatusOr<std::optional<Takeover>> takeover =
          co_await Takeover::Begin(address, Within(absl::Seconds(5)));
      EXPECT_TRUE(absl::IsDataLoss(takeover.status())) << takeover.status();
      EXPECT_TRUE(absl::StrContains(takeover.status().message(), "names 1 descriptors but 2"))
          << takeover.status();
    };
    co_await WhenAll(older(), newer());
  };
  RunTask(run());
}

// After a handoff the older instance leaves the socket files of the UNIX
// listeners it handed over: closing its listener does not remove them.
Task<void> LeaveTheFile(std::string path, SocketAddress upgrade) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SeqPacketListener listener, SeqPacketListener::Bind(upgrade));
  CONET_CO_ASSERT_OK_AND_ASSIGN(StreamListener served,
                                StreamListener::Bind(*SocketAddress::Parse("unix:" + path)));
  std::vector<OfferedFd> offer = {{"listen", served.fd()}};
  Older older;
  std::stop_source never;
  std::optional<UniqueFd> taken;
  auto successor = [&]() -> Task<void> {
    absl::StatusOr<std::optional<Takeover>> takeover =
        co_await Takeover::Begin(upgrade, Within(absl::Seconds(5)));
    CONET_CO_ASSERT_OK(takeover.status());
    taken = std::move((*takeover)->fds()[0].fd);
    CONET_CO_ASSERT_OK(co_await (*takeover)->Ready());
  };
  co_await WhenAll(Answer(&listener, offer, &older, never.get_token()), successor());
  CO_ASSERT_TRUE(older.result.ok());
  served.Close();
  struct stat status;
  EXPECT_EQ(::lstat(path.c_str(), &status), 0) << "the older instance removed the socket file";
  // The successor's descriptor still answers there.
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const SocketAddress address = *SocketAddress::Parse("unix:" + path);
  EXPECT_EQ(::connect(client.fd(), address.data(), address.size()), 0) << std::strerror(errno);
}

TEST(HandoffTest, TheOlderInstanceLeavesTheSocketFilesItHandedOver) {
  FdLeakCheck leaks;
  SharedTempDir dir;
  RunTask(LeaveTheFile(dir.Path("served.sock"), UpgradeAddress("file")));
}

}  // namespace
}  // namespace conet::ipc
