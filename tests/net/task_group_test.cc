#include "net/task_group.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/async_fd.h"
#include "net/timer.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::RunTask;
using ::conet::test::SleepThenRecord;
using ::conet::test::Tracked;

Task<void> JoinWaitsForAll(std::vector<int>* done) {
  TaskGroup group;
  // Far apart: the second child starts a loop pass after the first, which
  // under a sanitizer on a loaded machine took more than 4 ms (CI saw 2, 1).
  group.Spawn(SleepThenRecord(absl::Milliseconds(50), 2, done));
  group.Spawn(SleepThenRecord(absl::Milliseconds(2), 1, done));
  EXPECT_EQ(group.Running(), 2u);
  EXPECT_TRUE((co_await group.Join()).ok());
  EXPECT_EQ(group.Running(), 0u);
}

TEST(TaskGroupTest, JoinWaitsForEveryChild) {
  std::vector<int> done;
  RunTask(JoinWaitsForAll(&done));
  EXPECT_EQ(done, (std::vector<int>{1, 2}));
}

// A connection handler: writes its answer, returns, and so closes its end.
Task<absl::Status> AnswerAndReturn(AsyncFd connection) {
  const char answer = '!';
  co_return ::write(connection.fd(), &answer, 1) == 1 ? absl::OkStatus()
                                                      : absl::ErrnoToStatus(errno, "write");
}

// Spawns a handler that returns at once, then reads the client's end while
// the group is still alive and nothing else is spawned or joined.
Task<std::string> ClientOfAFinishedHandler() {
  int pair[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair), 0);
  absl::StatusOr<AsyncFd> server = AsyncFd::Create(UniqueFd(pair[0]));
  absl::StatusOr<AsyncFd> client = AsyncFd::Create(UniqueFd(pair[1]));
  TaskGroup group;
  group.Spawn(AnswerAndReturn(std::move(*server)));
  std::string seen;
  char buffer[8];
  while (true) {
    const ssize_t n = ::read(client->fd(), buffer, sizeof(buffer));
    if (n > 0) {
      seen.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      seen += "EOF";
      break;
    }
    absl::Status ready = co_await client->Readable(Within(absl::Seconds(5)));
    if (!ready.ok()) {
      seen += ready.ToString();
      break;
    }
  }
  EXPECT_TRUE((co_await group.Join()).ok());
  co_return seen;
}

TEST(TaskGroupTest, AFinishedChildsFrameAndItsParametersGoAtOnce) {
  // The handler's socket is closed when it returns, not at the next Spawn
  // or Join: its client sees the end of the stream.
  EXPECT_EQ(RunTask(ClientOfAFinishedHandler()), "!EOF");
}

Task<absl::Status> FailAfter(absl::Duration delay) {
  co_await Sleep(delay);
  co_return absl::InternalError("child 1 failed");
}

Task<absl::Status> WaitLong(absl::Status* ended) {
  *ended = co_await Sleep(absl::Hours(1));
  co_return absl::OkStatus();
}

Task<absl::Status> FirstErrorStopsSiblings(absl::Status* sibling) {
  TaskGroup group;
  group.Spawn(FailAfter(absl::Milliseconds(1)));
  group.Spawn(WaitLong(sibling));
  co_return co_await group.Join();
}

TEST(TaskGroupTest, FirstErrorIsReportedAndStopsTheOthers) {
  absl::Status sibling;
  absl::Status joined = RunTask(FirstErrorStopsSiblings(&sibling));
  EXPECT_EQ(joined, absl::InternalError("child 1 failed"));
  EXPECT_TRUE(absl::IsCancelled(sibling)) << sibling;
}

Task<void> Throw() {
  co_await Yield();
  throw std::runtime_error("thrown by a child");
}

Task<std::string> ExceptionIsRethrownByJoin(absl::Status* sibling) {
  TaskGroup group;
  group.Spawn(Throw());
  group.Spawn(WaitLong(sibling));
  try {
    co_await group.Join();
  } catch (const std::runtime_error& error) {
    co_return error.what();
  }
  co_return "nothing thrown";
}

TEST(TaskGroupTest, ExceptionStopsTheOthersAndIsRethrown) {
  absl::Status sibling;
  EXPECT_EQ(RunTask(ExceptionIsRethrownByJoin(&sibling)), "thrown by a child");
  EXPECT_TRUE(absl::IsCancelled(sibling));
}

Task<void> HoldForever(int* live) {
  Tracked tracked(live);
  co_await Sleep(absl::Hours(1));
}

Task<void> DropGroupWithRunningChildren(int* live, int* live_after) {
  {
    TaskGroup group;
    group.Spawn(HoldForever(live));
    group.Spawn(HoldForever(live));
    co_await Yield();
    EXPECT_EQ(*live, 2);
  }
  *live_after = *live;
  co_await Sleep(absl::Milliseconds(1));  // no dangling timer fires here
}

TEST(TaskGroupTest, DestroyingTheGroupDestroysRunningChildren) {
  int live = 0;
  int live_after = -1;
  RunTask(DropGroupWithRunningChildren(&live, &live_after));
  EXPECT_EQ(live_after, 0);
}

Task<absl::Status> JoinUnderStop(absl::Status* child) {
  TaskGroup group;
  group.Spawn(WaitLong(child));
  co_return co_await group.Join();
}

TEST(TaskGroupTest, StoppingTheJoinerStopsChildrenAndStillJoins) {
  std::stop_source source;
  absl::Status child = absl::UnknownError("not run");
  Task<absl::Status> task = JoinUnderStop(&child);
  task.SetStopToken(source.get_token());
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  (*loop)->Post([&] { source.request_stop(); });
  EXPECT_TRUE((*loop)->BlockOn(std::move(task)).ok());
  EXPECT_TRUE(absl::IsCancelled(child)) << child;
}

Task<int> ManyChildren() {
  TaskGroup group;
  auto counter = std::make_shared<int>(0);
  for (int i = 0; i < 10'000; ++i) {
    group.Spawn([](std::shared_ptr<int> count) -> Task<void> {
      co_await Yield();
      ++*count;
    }(counter));
  }
  co_await group.Join();
  co_return *counter;
}

TEST(TaskGroupTest, ManyShortChildrenAllRunAndAreReclaimed) {
  EXPECT_EQ(RunTask(ManyChildren()), 10'000);
}

}  // namespace
}  // namespace conet
