#include "net/async_fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "net/event_loop.h"
#include "net/task_group.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

std::pair<UniqueFd, UniqueFd> StreamPair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

auto ReadInto(AsyncFd& fd, char* buffer, size_t size, Cancellation cancel = {}) {
  return fd.Perform(
      Direction::kRead, "read", [&fd, buffer, size] { return ::read(fd.fd(), buffer, size); },
      std::move(cancel));
}

auto WriteFrom(AsyncFd& fd, const char* data, size_t size) {
  return fd.Perform(Direction::kWrite, "write",
                    [&fd, data, size] { return ::write(fd.fd(), data, size); });
}

Task<std::string> ReadSomeString(AsyncFd* fd) {
  std::array<char, 64> buffer;
  absl::StatusOr<size_t> n = co_await ReadInto(*fd, buffer.data(), buffer.size());
  if (!n.ok()) co_return n.status().ToString();
  co_return std::string(buffer.data(), *n);
}

Task<void> WriteLater(AsyncFd* fd, std::string text) {
  co_await Sleep(absl::Milliseconds(2));
  absl::StatusOr<size_t> n = co_await WriteFrom(*fd, text.data(), text.size());
  EXPECT_TRUE(n.ok()) << n.status();
}

Task<std::string> ReadWaitsForData(std::pair<UniqueFd, UniqueFd> pair) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  absl::StatusOr<AsyncFd> b = AsyncFd::Create(std::move(pair.second));
  EXPECT_TRUE(a.ok() && b.ok());
  auto [text, done] = co_await WhenAll(ReadSomeString(&*a), WriteLater(&*b, "hello"));
  co_return text;
}

TEST(AsyncFdTest, ReadSuspendsUntilThePeerWrites) {
  FdLeakCheck no_leaks;
  EXPECT_EQ(RunTask(ReadWaitsForData(StreamPair())), "hello");
}

// Fills the socket until the kernel says EAGAIN, then the pending write and a
// pending read on the same descriptor must both complete (full duplex).
Task<void> FullDuplex(std::pair<UniqueFd, UniqueFd> pair, bool* wrote_all, bool* read_one) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  UniqueFd peer = std::move(pair.second);
  std::string chunk(64 * 1024, 'x');
  while (::write(a->fd(), chunk.data(), chunk.size()) > 0) {
  }
  EXPECT_EQ(errno, EAGAIN);
  auto writer = [](AsyncFd* fd, std::string data, bool* done) -> Task<void> {
    absl::StatusOr<size_t> n = co_await WriteFrom(*fd, data.data(), data.size());
    *done = n.ok();
  };
  auto reader = [](AsyncFd* fd, bool* done) -> Task<void> {
    char byte;
    absl::StatusOr<size_t> n = co_await ReadInto(*fd, &byte, 1);
    *done = n.ok() && *n == 1 && byte == 'r';
  };
  auto peer_side = [](int fd) -> Task<void> {
    co_await Yield();  // both of a's operations are pending now
    EXPECT_EQ(::write(fd, "r", 1), 1);
    std::array<char, 65536> sink;
    for (int i = 0; i < 200; ++i) {
      if (::read(fd, sink.data(), sink.size()) <= 0) co_await Sleep(absl::Milliseconds(1));
    }
  };
  TaskGroup group;
  group.Spawn(writer(&*a, "tail", wrote_all));
  group.Spawn(reader(&*a, read_one));
  group.Spawn(peer_side(peer.fd()));
  EXPECT_TRUE((co_await group.Join()).ok());
}

TEST(AsyncFdTest, AReadAndAWriteCanBePendingAtOnce) {
  FdLeakCheck no_leaks;
  bool wrote = false;
  bool read = false;
  RunTask(FullDuplex(StreamPair(), &wrote, &read));
  EXPECT_TRUE(wrote);
  EXPECT_TRUE(read);
}

Task<absl::Status> SecondReadIsRefused(std::pair<UniqueFd, UniqueFd> pair) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  std::stop_source stop;
  TaskGroup group;
  auto first = [](AsyncFd* fd, std::stop_token token) -> Task<absl::Status> {
    char byte;
    absl::StatusOr<size_t> n = co_await ReadInto(*fd, &byte, 1, token);
    co_return absl::IsCancelled(n.status()) ? absl::OkStatus() : n.status();
  };
  group.Spawn(first(&*a, stop.get_token()));
  co_await Yield();
  char byte;
  absl::StatusOr<size_t> second = co_await ReadInto(*a, &byte, 1);
  stop.request_stop();
  EXPECT_TRUE((co_await group.Join()).ok());
  co_return second.status();
}

TEST(AsyncFdTest, ASecondPendingReadIsAnError) {
  absl::Status status = RunTask(SecondReadIsRefused(StreamPair()));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("already has a pending read"), std::string::npos);
}

Task<absl::Status> CloseWhileReading(std::pair<UniqueFd, UniqueFd> pair) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  absl::Status seen;
  auto reader = [](AsyncFd* fd, absl::Status* out) -> Task<void> {
    char byte;
    *out = (co_await ReadInto(*fd, &byte, 1)).status();
  };
  TaskGroup group;
  group.Spawn(reader(&*a, &seen));
  co_await Yield();
  a->Close();
  EXPECT_TRUE((co_await group.Join()).ok());
  co_return seen;
}

TEST(AsyncFdTest, ClosingWakesThePendingOperation) {
  FdLeakCheck no_leaks;
  absl::Status status = RunTask(CloseWhileReading(StreamPair()));
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
}

// Writes to `fd` until its send buffer is full (EAGAIN).
void FillSendBuffer(int fd) {
  std::vector<char> chunk(64 * 1024, 'x');
  while (::write(fd, chunk.data(), chunk.size()) > 0) {
  }
  EXPECT_EQ(errno, EAGAIN);
}

// Reads everything queued on `peer`, then writes one byte to it: the other end
// becomes writable and readable before the loop polls again, so one event
// reports both.
void DrainThenWriteOneByte(int peer) {
  std::vector<char> chunk(64 * 1024);
  while (::read(peer, chunk.data(), chunk.size()) > 0) {
  }
  EXPECT_EQ(::write(peer, "!", 1), 1);
}

// What the reader does when it resumes from an event that also makes the
// descriptor writable.
enum class ReaderThen { kClosesTheDescriptor, kGrowsTheLoopsSlotTable };

struct DuplexOutcome {
  absl::Status read;
  absl::Status write;
};

// A writer waits on a full socket and a reader on an empty one; then the
// peer drains the socket and writes a byte in the same pass, so one event
// wakes both directions. The reader resumes first and either closes the
// descriptor or registers one numbered past the loop's slot table (which
// moves the table); the writer must then end cleanly, not be lost.
Task<DuplexOutcome> ReaderActsOnADuplexEvent(std::pair<UniqueFd, UniqueFd> pair, ReaderThen then) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  FillSendBuffer(a->fd());
  const std::vector<char> chunk(64 * 1024, 'x');
  DuplexOutcome outcome;
  auto reader = [](AsyncFd* fd, ReaderThen action, absl::Status* out) -> Task<void> {
    char byte;
    *out = (co_await ReadInto(*fd, &byte, 1)).status();
    if (action == ReaderThen::kClosesTheDescriptor) {
      fd->Close();
    } else {
      UniqueFd far(::fcntl(fd->fd(), F_DUPFD_CLOEXEC, 512));
      EXPECT_TRUE(far.is_open()) << "F_DUPFD to 512: " << std::strerror(errno);
      absl::StatusOr<AsyncFd> registered = AsyncFd::Create(std::move(far));
      EXPECT_TRUE(registered.ok()) << registered.status();
    }
  };
  auto writer = [](AsyncFd* fd, const std::vector<char>* data, absl::Status* out) -> Task<void> {
    *out = (co_await WriteFrom(*fd, data->data(), data->size())).status();
  };
  TaskGroup group;
  group.Spawn(reader(&*a, then, &outcome.read));
  group.Spawn(writer(&*a, &chunk, &outcome.write));
  co_await Yield();
  DrainThenWriteOneByte(pair.second.fd());
  EXPECT_TRUE((co_await group.Join()).ok());
  co_return outcome;
}

TEST(AsyncFdTest, AReaderClosingOnADuplexEventCancelsTheWaitingWriter) {
  FdLeakCheck no_leaks;
  DuplexOutcome outcome =
      RunTask(ReaderActsOnADuplexEvent(StreamPair(), ReaderThen::kClosesTheDescriptor));
  EXPECT_TRUE(outcome.read.ok()) << outcome.read;
  EXPECT_TRUE(absl::IsCancelled(outcome.write)) << outcome.write;
}

TEST(AsyncFdTest, AReaderGrowingTheSlotTableOnADuplexEventStillWakesTheWriter) {
  FdLeakCheck no_leaks;
  DuplexOutcome outcome =
      RunTask(ReaderActsOnADuplexEvent(StreamPair(), ReaderThen::kGrowsTheLoopsSlotTable));
  EXPECT_TRUE(outcome.read.ok()) << outcome.read;
  EXPECT_TRUE(outcome.write.ok()) << outcome.write;
}

// A task whose write met EAGAIN waits for a read first; the event that ends
// the read also says the socket is writable again, and the task's
// Writable() that follows must see that edge: no later one is coming.
Task<absl::Status> WritableAfterAReadOnTheSameEvent(std::pair<UniqueFd, UniqueFd> pair) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  FillSendBuffer(a->fd());
  absl::Status writable;
  auto read_then_await_writable = [](AsyncFd* fd, absl::Status* out) -> Task<void> {
    char byte;
    absl::StatusOr<size_t> n = co_await ReadInto(*fd, &byte, 1);
    EXPECT_TRUE(n.ok()) << n.status();
    *out = co_await fd->Writable(Within(absl::Seconds(5)));
  };
  TaskGroup group;
  group.Spawn(read_then_await_writable(&*a, &writable));
  co_await Yield();
  DrainThenWriteOneByte(pair.second.fd());
  EXPECT_TRUE((co_await group.Join()).ok());
  co_return writable;
}

TEST(AsyncFdTest, WritableAfterAReadSeesTheEdgeThatEndedTheRead) {
  FdLeakCheck no_leaks;
  absl::Status status = RunTask(WritableAfterAReadOnTheSameEvent(StreamPair()));
  EXPECT_TRUE(status.ok()) << status;
}

Task<absl::Status> ReadWithDeadline(std::pair<UniqueFd, UniqueFd> pair) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  char byte;
  co_return (co_await ReadInto(*a, &byte, 1, Within(absl::Milliseconds(5)))).status();
}

TEST(AsyncFdTest, DeadlineEndsAPendingRead) {
  FdLeakCheck no_leaks;
  EXPECT_TRUE(absl::IsDeadlineExceeded(RunTask(ReadWithDeadline(StreamPair()))));
}

TEST(AsyncFdTest, ErrorsNameTheOperationAndDescriptor) {
  auto task = [](std::pair<UniqueFd, UniqueFd> pair) -> Task<absl::Status> {
    absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
    ::shutdown(a->fd(), SHUT_WR);
    co_return (co_await a->Perform(Direction::kWrite, "send", [fd = a->fd()] {
      return ::send(fd, "x", 1, MSG_NOSIGNAL);  // EPIPE, no SIGPIPE
    })).status();
  };
  absl::Status status = RunTask(task(StreamPair()));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("send on fd"), std::string::npos) << status;
}

// Returns the descriptors the process's epoll instances watch, from
// /proc/self/fdinfo ("tfd:" lines).
std::vector<int> WatchedDescriptors() {
  std::vector<int> watched;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return watched;
  while (dirent* entry = ::readdir(dir)) {
    char target[64] = {};
    const std::string link = std::string("/proc/self/fd/") + entry->d_name;
    if (::readlink(link.c_str(), target, sizeof(target) - 1) <= 0) continue;
    if (std::string(target) != "anon_inode:[eventpoll]") continue;
    std::ifstream info(std::string("/proc/self/fdinfo/") + entry->d_name);
    std::string word;
    while (info >> word) {
      if (word == "tfd:" && info >> word) watched.push_back(std::stoi(word));
    }
  }
  ::closedir(dir);
  return watched;
}

bool IsWatched(int fd) {
  const std::vector<int> watched = WatchedDescriptors();
  return std::find(watched.begin(), watched.end(), fd) != watched.end();
}

Task<void> WatchedOnlyOnceItWaits(std::pair<UniqueFd, UniqueFd> pair) {
  absl::StatusOr<AsyncFd> a = AsyncFd::Create(std::move(pair.first));
  absl::StatusOr<AsyncFd> b = AsyncFd::Create(std::move(pair.second));
  const int fd = a->fd();
  // Data is there already: the read never waits, so epoll never hears of fd.
  EXPECT_EQ(::write(b->fd(), "x", 1), 1);
  EXPECT_EQ(co_await ReadSomeString(&*a), "x");
  EXPECT_FALSE(IsWatched(fd));
  // Nothing there: the read waits, and the descriptor joins the epoll set.
  auto [text, done] = co_await WhenAll(ReadSomeString(&*a), WriteLater(&*b, "y"));
  EXPECT_EQ(text, "y");
  EXPECT_TRUE(IsWatched(fd));
  a->Close();
  EXPECT_FALSE(IsWatched(fd));
}

TEST(AsyncFdTest, ADescriptorJoinsEpollOnlyWhenAnOperationWaits) {
  FdLeakCheck no_leaks;
  RunTask(WatchedOnlyOnceItWaits(StreamPair()));
}

Task<absl::Status> WaitOnARegularFile(UniqueFd file) {
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(file));
  if (!fd.ok()) co_return fd.status();
  co_return co_await fd->Readable();
}

TEST(AsyncFdTest, WaitingOnADescriptorEpollRefusesIsAnError) {
  FdLeakCheck no_leaks;
  UniqueFd file(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  ASSERT_TRUE(file.is_open());
  const absl::Status status = RunTask(WaitOnARegularFile(std::move(file)));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_NE(status.message().find("epoll_ctl ADD fd"), std::string::npos) << status;
}

TEST(AsyncFdTest, CreateWithoutARunningLoopFails) {
  FdLeakCheck no_leaks;
  auto pair = StreamPair();
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(pair.first));
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Registers one end of a socketpair with a loop, destroys the loop, then
// the AsyncFd: the mistake the debug check names.
void CloseAfterTheLoop() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return;
  UniqueFd other(pair[1]);
  std::optional<AsyncFd> fd;
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) return;
  fd.emplace(*AsyncFd::Create(UniqueFd(pair[0]), loop->get()));
  loop->reset();
  fd.reset();
}

TEST(AsyncFdDeathTest, ASocketClosedAfterItsLoopAbortsWithAMessageNamingIt) {
#ifdef NDEBUG
  GTEST_SKIP() << "checked in debug builds only";
#endif
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(CloseAfterTheLoop(), "fd [0-9]+ .* is closed after its EventLoop was destroyed");
}

}  // namespace
}  // namespace conet
