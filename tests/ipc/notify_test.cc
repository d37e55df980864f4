#include "ipc/notify.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/task.h"
#include "net/timer.h"
#include "net/unique_fd.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

// The service manager's end is a plain AF_UNIX datagram socket, made and
// read with system calls, so that the tests check the bytes systemd would
// see, not what conet makes of them.
namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::conet::test::SharedTempDir;

// Sets (or, for null, unsets) NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID.
void SetEnvironment(const char* socket, const char* usec, const char* pid) {
  const std::pair<const char*, const char*> variables[] = {
      {"NOTIFY_SOCKET", socket}, {"WATCHDOG_USEC", usec}, {"WATCHDOG_PID", pid}};
  for (const auto& [name, value] : variables) {
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
}

bool EnvironmentUnset() {
  return std::getenv("NOTIFY_SOCKET") == nullptr && std::getenv("WATCHDOG_USEC") == nullptr &&
         std::getenv("WATCHDOG_PID") == nullptr;
}

// One datagram as the manager receives it.
struct Datagram {
  std::string text;
  std::vector<UniqueFd> fds;
};

enum class Where { kPath, kAbstract };

// The manager's notification socket: bound to a path in a fresh directory,
// or to an abstract name.
class Receiver {
 public:
  explicit Receiver(Where where) {
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    static int count = 0;
    const std::string abstract = absl::StrCat("conet-notify-test-", ::getpid(), "-", ++count);
    name_ = where == Where::kPath ? dir_.Path("notify") : "@" + abstract;
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name_.data(), name_.size());
    if (where == Where::kAbstract) address.sun_path[0] = '\0';
    const socklen_t size = offsetof(sockaddr_un, sun_path) + name_.size();
    EXPECT_EQ(::bind(fd_.fd(), reinterpret_cast<sockaddr*>(&address), size), 0) << name_;
  }

  // Returns NOTIFY_SOCKET's value for this socket.
  const std::string& name() const { return name_; }
  int fd() const { return fd_.fd(); }
  // Closes the socket, leaving a path's file behind (as a dead manager would).
  void Close() { fd_.Reset(); }

  // Waits up to `timeout` for one datagram; nullopt if none came.
  std::optional<Datagram> Receive(absl::Duration timeout = absl::Seconds(5)) {
    pollfd ready{fd_.fd(), POLLIN, 0};
    const int waited = ::poll(&ready, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    if (waited <= 0) return std::nullopt;
    return Take();
  }

  // Returns the texts of the datagrams already queued, without waiting.
  std::vector<std::string> Drain() {
    std::vector<std::string> texts;
    while (std::optional<Datagram> datagram = Take()) texts.push_back(std::move(datagram->text));
    return texts;
  }

 private:
  // Reads one datagram and the descriptors that came with it, if one is
  // queued.
  std::optional<Datagram> Take() {
    char buffer[4096];
    alignas(cmsghdr) char control[CMSG_SPACE(8 * sizeof(int))];
    iovec iov{buffer, sizeof buffer};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_.fd(), &message, MSG_CMSG_CLOEXEC);
    if (n < 0) return std::nullopt;
    EXPECT_EQ(message.msg_flags & (MSG_TRUNC | MSG_CTRUNC), 0);
    Datagram datagram{std::string(buffer, static_cast<size_t>(n)), {}};
    for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int received;
        std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        datagram.fds.emplace_back(received);
      }
    }
    return datagram;
  }

  SharedTempDir dir_;
  std::string name_;
  UniqueFd fd_;
};

// Reads the environment as set, failing the test on an error.
Notifier FromEnvironment(const char* socket, const char* usec = nullptr,
                         const char* pid = nullptr) {
  SetEnvironment(socket, usec, pid);
  absl::StatusOr<Notifier> notifier = Notifier::FromEnvironment();
  EXPECT_TRUE(notifier.ok()) << notifier.status();
  return notifier.ok() ? *std::move(notifier) : Notifier();
}

// Runs `send` on a fresh loop and returns the text of the datagram that
// arrived, "(nothing)" if none did.
std::string SentText(Task<absl::Status> send, Receiver& receiver) {
  const absl::Status sent = RunTask(std::move(send));
  EXPECT_TRUE(sent.ok()) << sent;
  std::optional<Datagram> got = receiver.Receive();
  if (!got.has_value()) return "(nothing)";
  EXPECT_TRUE(got->fds.empty());
  return got->text;
}

void ExpectEachMessage(Where where) {
  FdLeakCheck leaks;
  Receiver receiver(where);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  EXPECT_TRUE(notifier.enabled());
  EXPECT_EQ(SentText(notifier.Ready(), receiver), "READY=1");
  EXPECT_EQ(SentText(notifier.Ready(123), receiver), "READY=1\nMAINPID=123");
  EXPECT_EQ(SentText(notifier.Stopping(), receiver), "STOPPING=1");
  EXPECT_EQ(SentText(notifier.Status("serving\n2 clients\nREADY=1"), receiver),
            "STATUS=serving 2 clients READY=1");
  EXPECT_EQ(SentText(notifier.MainPid(77), receiver), "MAINPID=77");
  EXPECT_EQ(SentText(notifier.Watchdog(), receiver), "WATCHDOG=1");
  EXPECT_EQ(SentText(notifier.Send("STATUS=a\nERRNO=5"), receiver), "STATUS=a\nERRNO=5");
}

TEST(NotifierTest, EachMessageReachesAPathSocket) { ExpectEachMessage(Where::kPath); }

TEST(NotifierTest, EachMessageReachesAnAbstractSocket) { ExpectEachMessage(Where::kAbstract); }

// Returns the lowest descriptor number not in use.
int LowestFreeFd() {
  const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ::close(probe);
  return probe;
}

// Sends READY=1 with no descriptor number left to open (RLIMIT_NOFILE
// lowered to the lowest free one), then restores the limit.
Task<absl::Status> ReadyWithNoFreeDescriptor(const Notifier* notifier) {
  rlimit saved;
  ::getrlimit(RLIMIT_NOFILE, &saved);
  rlimit lowered = saved;
  lowered.rlim_cur = static_cast<rlim_t>(LowestFreeFd());
  ::setrlimit(RLIMIT_NOFILE, &lowered);
  absl::Status sent = co_await notifier->Ready();
  ::setrlimit(RLIMIT_NOFILE, &saved);
  co_return sent;
}

TEST(NotifierTest, UnsetSocketIsDisabledAndOpensNothing) {
  FdLeakCheck leaks;
  const Notifier disabled = FromEnvironment(nullptr, "200000", nullptr);
  EXPECT_FALSE(disabled.enabled());
  EXPECT_EQ(disabled.watchdog_interval(), absl::ZeroDuration());
  const std::set<int> before = test::OpenFds();
  EXPECT_TRUE(RunTask(ReadyWithNoFreeDescriptor(&disabled)).ok());
  EXPECT_TRUE(RunTask(disabled.Status("x")).ok());
  EXPECT_TRUE(RunTask(disabled.RunWatchdog(Within(absl::Seconds(5)))).ok());
  EXPECT_EQ(test::OpenFds(), before);
  // The same send, enabled, needs a descriptor: the check above can fail.
  Receiver receiver(Where::kAbstract);
  const Notifier enabled = FromEnvironment(receiver.name().c_str());
  EXPECT_FALSE(RunTask(ReadyWithNoFreeDescriptor(&enabled)).ok());
}

int64_t MonotonicMicros() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1000000 + now.tv_nsec / 1000;
}

TEST(NotifierTest, ReloadingCarriesTheMonotonicTime) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kPath);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  const int64_t before = MonotonicMicros();
  const std::string text = SentText(notifier.Reloading(), receiver);
  const int64_t after = MonotonicMicros();
  absl::string_view rest = text;
  ASSERT_TRUE(absl::ConsumePrefix(&rest, "RELOADING=1\nMONOTONIC_USEC=")) << text;
  int64_t stamp = 0;
  ASSERT_TRUE(absl::SimpleAtoi(rest, &stamp)) << text;
  EXPECT_GE(stamp, before);
  EXPECT_LE(stamp, after);
}

bool SameFile(int a, int b) {
  struct stat sa, sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

TEST(NotifierTest, StoreFdsPassesTheDescriptorsUnderTheirName) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kAbstract);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  int pipe_ends[2];
  int sockets[2];
  ASSERT_EQ(::pipe2(pipe_ends, O_CLOEXEC), 0);
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets), 0);
  const UniqueFd pipe_read(pipe_ends[0]), pipe_write(pipe_ends[1]);
  const UniqueFd socket_a(sockets[0]), socket_b(sockets[1]);
  const std::vector<int> fds = {pipe_read.fd(), socket_a.fd()};

  const absl::Status stored = RunTask(notifier.StoreFds("web-listener", fds));
  ASSERT_TRUE(stored.ok()) << stored;
  std::optional<Datagram> got = receiver.Receive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->text, "FDSTORE=1\nFDNAME=web-listener");
  ASSERT_EQ(got->fds.size(), 2u);
  EXPECT_TRUE(SameFile(got->fds[0].fd(), pipe_read.fd()));
  EXPECT_TRUE(SameFile(got->fds[1].fd(), socket_a.fd()));
  EXPECT_GE(::fcntl(pipe_read.fd(), F_GETFD), 0) << "the caller's descriptor was closed";
}

TEST(NotifierTest, BadFdNamesAreRefusedBeforeSending) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kPath);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  const std::vector<UniqueFd> owned = test::PipeReadEnds(1);
  const std::vector<int> fds = test::RawFds(owned);
  const std::string bad[] = {"",
                             std::string(kMaxFdNameLength + 1, 'a'),
                             "a:b",
                             "tab\there",
                             "new\nFDSTORE=1",
                             "caf\xc3\xa9",
                             "del\x7f"};
  for (const std::string& name : bad) {
    const absl::Status stored = RunTask(notifier.StoreFds(name, fds));
    EXPECT_TRUE(absl::IsInvalidArgument(stored)) << "\"" << name << "\": " << stored;
    const absl::Status removed = RunTask(notifier.RemoveStoredFds(name));
    EXPECT_TRUE(absl::IsInvalidArgument(removed)) << "\"" << name << "\": " << removed;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(RunTask(notifier.StoreFds("none", {}))));
  // The longest name is fine; nothing came before it.
  const std::string longest(kMaxFdNameLength, 'z');
  EXPECT_TRUE(RunTask(notifier.StoreFds(longest, fds)).ok());
  std::optional<Datagram> got = receiver.Receive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->text, "FDSTORE=1\nFDNAME=" + longest);
  EXPECT_EQ(got->fds.size(), 1u);
}

TEST(NotifierTest, RemoveStoredFdsNamesThem) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kAbstract);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  EXPECT_EQ(SentText(notifier.RemoveStoredFds("web"), receiver), "FDSTOREREMOVE=1\nFDNAME=web");
}

TEST(NotifierTest, SendRefusesWhatSystemdWouldDrop) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kAbstract);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  const std::vector<UniqueFd> owned = test::PipeReadEnds(1);
  const std::vector<int> fds = test::RawFds(owned);
  EXPECT_TRUE(absl::IsInvalidArgument(RunTask(notifier.Send("READY=1", fds))));
  EXPECT_TRUE(absl::IsInvalidArgument(RunTask(notifier.Send(std::string("READY=1\0x", 9)))));
  EXPECT_TRUE(absl::IsInvalidArgument(RunTask(notifier.Send(""))));
  EXPECT_TRUE(absl::IsInvalidArgument(RunTask(notifier.MainPid(0))));
  EXPECT_TRUE(absl::IsInvalidArgument(RunTask(notifier.Ready(-1))));
  EXPECT_EQ(SentText(notifier.Status(std::string("a\0b", 3)), receiver), "STATUS=a b");
}

TEST(NotifierTest, WatchdogIntervalIsHalfOfWatchdogUsecForUsOnly) {
  Receiver receiver(Where::kAbstract);
  const char* socket = receiver.name().c_str();
  const std::string self = std::to_string(::getpid());
  const std::string parent = std::to_string(::getppid());
  EXPECT_EQ(FromEnvironment(socket, "200000").watchdog_interval(), absl::Milliseconds(100));
  EXPECT_EQ(FromEnvironment(socket, "200000", self.c_str()).watchdog_interval(),
            absl::Milliseconds(100));
  EXPECT_EQ(FromEnvironment(socket, "200000", parent.c_str()).watchdog_interval(),
            absl::ZeroDuration());
  EXPECT_EQ(FromEnvironment(socket, "0").watchdog_interval(), absl::ZeroDuration());
  EXPECT_EQ(FromEnvironment(socket).watchdog_interval(), absl::ZeroDuration());
}

TEST(NotifierTest, RunWatchdogPingsAtTheInterval) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kPath);
  const std::string self = std::to_string(::getpid());
  const Notifier notifier = FromEnvironment(receiver.name().c_str(), "200000", self.c_str());
  // At once, then every 100 ms: 4 pings in 350 ms (0, 100, 200, 300).
  const absl::Status ran = RunTask(notifier.RunWatchdog(Within(absl::Milliseconds(350))));
  EXPECT_TRUE(ran.ok()) << ran;
  const std::vector<std::string> pings = receiver.Drain();
  EXPECT_GE(pings.size(), 2u);
  EXPECT_LE(pings.size(), 6u);
  for (const std::string& ping : pings) EXPECT_EQ(ping, "WATCHDOG=1");
}

TEST(NotifierTest, RunWatchdogReturnsAtOnceWhenTheWatchdogIsOff) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kPath);
  const std::string parent = std::to_string(::getppid());
  const Notifier notifier = FromEnvironment(receiver.name().c_str(), "200000", parent.c_str());
  const absl::Time start = absl::Now();
  EXPECT_TRUE(RunTask(notifier.RunWatchdog(Within(absl::Seconds(5)))).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // Nothing was sent: the first datagram to arrive is this one.
  EXPECT_EQ(SentText(notifier.Ready(), receiver), "READY=1");
}

struct BadEnvironment {
  const char* socket;
  const char* usec;
  const char* pid;
  const char* quoted;  // what the error must quote
};

TEST(NotifierTest, BadValuesAreInvalidArgumentQuotingThem) {
  FdLeakCheck leaks;
  const std::string too_long = "/" + std::string(200, 'x');
  const std::string quoted_long = "\"" + too_long + "\"";
  const BadEnvironment cases[] = {
      {"run/systemd/notify", nullptr, nullptr, "NOTIFY_SOCKET=\"run/systemd/notify\""},
      {"vsock:2:1234", nullptr, nullptr, "\"vsock:2:1234\""},
      {"", nullptr, nullptr, "NOTIFY_SOCKET=\"\""},
      {"@", nullptr, nullptr, "NOTIFY_SOCKET=\"@\""},
      {too_long.c_str(), nullptr, nullptr, quoted_long.c_str()},
      {"@ok", "abc", nullptr, "WATCHDOG_USEC=\"abc\""},
      {"@ok", "-5", nullptr, "\"-5\""},
      {"@ok", "12x", nullptr, "\"12x\""},
      {"@ok", "", nullptr, "WATCHDOG_USEC=\"\""},
      {"@ok", "99999999999999999999999", nullptr, "\"99999999999999999999999\""},
      {"@ok", "200000", "pid", "WATCHDOG_PID=\"pid\""},
      {"@ok", "200000", "-3", "\"-3\""},
      {nullptr, "abc", nullptr, "WATCHDOG_USEC=\"abc\""},
  };
  for (const BadEnvironment& bad : cases) {
    SetEnvironment(bad.socket, bad.usec, bad.pid);
    absl::StatusOr<Notifier> notifier = Notifier::FromEnvironment();
    EXPECT_TRUE(absl::IsInvalidArgument(notifier.status()))
        << bad.quoted << ": " << notifier.status();
    EXPECT_NE(notifier.status().message().find(bad.quoted), std::string::npos)
        << "does not quote " << bad.quoted << ": " << notifier.status();
    EXPECT_TRUE(EnvironmentUnset()) << bad.quoted;
  }
}

TEST(NotifierTest, FromEnvironmentUnsetsTheVariablesUnlessAskedNotTo) {
  SetEnvironment("@conet-notify", "200000", "1");
  ASSERT_TRUE(Notifier::FromEnvironment(/*unset_environment=*/false).ok());
  EXPECT_NE(std::getenv("NOTIFY_SOCKET"), nullptr);
  EXPECT_NE(std::getenv("WATCHDOG_USEC"), nullptr);
  EXPECT_NE(std::getenv("WATCHDOG_PID"), nullptr);
  absl::StatusOr<Notifier> notifier = Notifier::FromEnvironment();
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  EXPECT_TRUE(notifier->enabled());
  EXPECT_TRUE(EnvironmentUnset());
  // A second call finds nothing: disabled.
  absl::StatusOr<Notifier> again = Notifier::FromEnvironment();
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->enabled());
}

TEST(NotifierTest, AGoneReceiverIsAnErrorNamingThePath) {
  FdLeakCheck leaks;
  SharedTempDir dir;
  const std::string nothing = dir.Path("no-socket-here");
  const Notifier missing = FromEnvironment(nothing.c_str());
  const absl::Status sent = RunTask(missing.Ready());
  EXPECT_TRUE(absl::IsNotFound(sent)) << sent;
  EXPECT_NE(sent.message().find(nothing), std::string::npos) << sent;
  const std::string self = std::to_string(::getpid());
  const Notifier watchdog = FromEnvironment(nothing.c_str(), "200000", self.c_str());
  const absl::Status fed = RunTask(watchdog.RunWatchdog(Within(absl::Seconds(5))));
  EXPECT_TRUE(absl::IsNotFound(fed)) << fed;
  EXPECT_NE(fed.message().find(nothing), std::string::npos) << fed;

  Receiver dead(Where::kPath);  // its file stays, nobody reads it
  dead.Close();
  const Notifier stale = FromEnvironment(dead.name().c_str());
  const absl::Status refused = RunTask(stale.Ready());
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find(dead.name()), std::string::npos) << refused;
}

// A kept socket is connected once: sends reach the manager's socket even
// after its path is gone (a fresh connect per send would find nothing
// there), copies share it, and the last copy closes it.
TEST(NotifierTest, AKeptSocketIsConnectedOnceAndSharedByCopies) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kPath);
  {
    Notifier notifier = FromEnvironment(receiver.name().c_str());
    ASSERT_TRUE(notifier.KeepConnected().ok());
    ASSERT_EQ(::unlink(receiver.name().c_str()), 0);
    EXPECT_EQ(SentText(notifier.Ready(), receiver), "READY=1");
    const Notifier copy = notifier;
    EXPECT_EQ(SentText(copy.Status("kept"), receiver), "STATUS=kept");
    std::vector<UniqueFd> pipe = test::PipeReadEnds(1);
    EXPECT_TRUE(RunTask(copy.StoreFds("log", {pipe[0].fd()})).ok());
    std::optional<Datagram> stored = receiver.Receive();
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(stored->text, "FDSTORE=1\nFDNAME=log");
    EXPECT_EQ(stored->fds.size(), 1u);
  }
  Notifier fresh = FromEnvironment(receiver.name().c_str());
  EXPECT_TRUE(absl::IsNotFound(RunTask(fresh.Ready())));
  EXPECT_TRUE(absl::IsNotFound(fresh.KeepConnected())) << fresh.KeepConnected();
  Notifier disabled;
  EXPECT_TRUE(disabled.KeepConnected().ok());
}

// Sends READY=1 and records that it completed.
Task<absl::Status> ReadyAndRecord(const Notifier* notifier, bool* done) {
  const Cancellation give_up = Within(absl::Seconds(5));
  absl::Status sent = co_await notifier->Ready(give_up);
  *done = true;
  co_return sent;
}

// Returns the CPU time this thread (the loop's) has used.
absl::Duration ThreadCpuTime() {
  timespec used;
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &used);
  return absl::DurationFromTimespec(used);
}

// While the send waits for room, checks that the loop sleeps (a send that
// retried on every readiness edge would spin: on an unconnected socket each
// failed attempt raises a new one), then empties the queue.
Task<size_t> DrainWhileItWaits(Receiver* receiver, const bool* done) {
  const absl::Duration window = absl::Milliseconds(50);
  const absl::Duration before = ThreadCpuTime();
  co_await Sleep(window);
  const absl::Duration used = ThreadCpuTime() - before;
  EXPECT_FALSE(*done) << "the send did not wait for room";
  EXPECT_LT(used, window / 2) << "the loop was busy while the send waited";
  co_return receiver->Drain().size();
}

Task<void> SendIntoAFullQueue(const Notifier* notifier, Receiver* receiver, size_t filled) {
  bool done = false;
  auto [sent, drained] =
      co_await WhenAll(ReadyAndRecord(notifier, &done), DrainWhileItWaits(receiver, &done));
  EXPECT_TRUE(sent.ok()) << sent;
  EXPECT_EQ(drained, filled);
}

TEST(NotifierTest, AFullQueueIsWaitedOnWithoutBlockingTheLoop) {
  FdLeakCheck leaks;
  Receiver receiver(Where::kAbstract);
  const Notifier notifier = FromEnvironment(receiver.name().c_str());
  // Another service fills the manager's queue (net.unix.max_dgram_qlen).
  const UniqueFd other(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_EQ(::connect(other.fd(), reinterpret_cast<const sockaddr*>(notifier.address()->data()),
                      notifier.address()->size()),
            0);
  size_t filled = 0;
  while (::send(other.fd(), "STATUS=x", 8, MSG_NOSIGNAL) == 8) ++filled;
  ASSERT_EQ(errno, EAGAIN);
  RunTask(SendIntoAFullQueue(&notifier, &receiver, filled));
  std::optional<Datagram> got = receiver.Receive();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->text, "READY=1");
}

TEST(CheckFdNameTest, QuotesTheNameAndSaysWhy) {
  const absl::Status colon = CheckFdName("a:b");
  EXPECT_TRUE(absl::IsInvalidArgument(colon));
  EXPECT_NE(colon.message().find("\"a:b\""), std::string::npos) << colon;
  EXPECT_TRUE(CheckFdName("control").ok());
}

}  // namespace
}  // namespace conet::ipc
