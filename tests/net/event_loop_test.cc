#include "net/event_loop.h"

#include <sys/resource.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/timer.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::Tracked;

std::unique_ptr<EventLoop> NewLoop() {
  auto loop = EventLoop::Create();
  EXPECT_TRUE(loop.ok()) << loop.status();
  return *std::move(loop);
}

Task<int> SleepThenReturn(int value) {
  co_await Sleep(absl::Milliseconds(1));
  co_return value;
}

TEST(EventLoopTest, BlockOnReturnsTheTaskValue) {
  FdLeakCheck no_leaks;
  auto loop = NewLoop();
  EXPECT_EQ(loop->BlockOn(SleepThenReturn(9)), 9);
  EXPECT_EQ(EventLoop::Current(), nullptr);
}

Task<void> Append(std::vector<int>* order, int value) {
  order->push_back(value);
  co_await Yield();
  order->push_back(value + 10);
}

Task<void> SpawnThree(std::vector<int>* order) {
  EventLoop* loop = EventLoop::Current();
  loop->SpawnDetached(Append(order, 1));
  loop->SpawnDetached(Append(order, 2));
  loop->SpawnDetached(Append(order, 3));
  order->push_back(0);
  while (loop->DetachedCount() > 0) co_await Yield();
}

TEST(EventLoopTest, DetachedTasksStartInSpawnOrderAndInterleaveAtYields) {
  std::vector<int> order;
  NewLoop()->BlockOn(SpawnThree(&order));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 11, 12, 13}));
}

TEST(EventLoopTest, PostFromAnotherThreadRunsOnTheLoopThread) {
  auto loop = NewLoop();
  std::atomic<int> ran{0};
  std::thread::id loop_thread;
  std::thread::id seen_thread;
  std::thread runner([&] {
    loop_thread = std::this_thread::get_id();
    loop->Run();
  });
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 250; ++i) {
        loop->Post([&] {
          seen_thread = std::this_thread::get_id();
          if (ran.fetch_add(1) + 1 == 1000) loop->Stop();
        });
      }
    });
  }
  for (auto& poster : posters) poster.join();
  runner.join();
  EXPECT_EQ(ran.load(), 1000);
  EXPECT_EQ(seen_thread, loop_thread);
}

TEST(EventLoopTest, StopFromAnotherThreadEndsRun) {
  auto loop = NewLoop();
  absl::Notification running;
  loop->Post([&] { running.Notify(); });
  std::thread stopper([&] {
    running.WaitForNotification();
    loop->Stop();
  });
  loop->Run();  // returns only because of Stop()
  stopper.join();
  SUCCEED();
}

// CPU time this thread has used so far.
absl::Duration ThreadCpuTime() {
  rusage usage{};
  EXPECT_EQ(::getrusage(RUSAGE_THREAD, &usage), 0);
  return absl::DurationFromTimeval(usage.ru_utime) + absl::DurationFromTimeval(usage.ru_stime);
}

Task<int> SleepThenSeven() {
  co_await Sleep(absl::Milliseconds(200));
  co_return 7;
}

// Stop() is for Run(); a BlockOn that follows it still blocks in the poll
// while it waits, rather than polling with a zero timeout until its task is
// done (which would burn the whole 200 ms on the CPU).
TEST(EventLoopTest, StopDoesNotMakeBlockOnSpin) {
  auto loop = NewLoop();
  loop->Stop();
  const absl::Duration cpu_before = ThreadCpuTime();
  EXPECT_EQ(loop->BlockOn(SleepThenSeven()), 7);
  EXPECT_LT(ThreadCpuTime() - cpu_before, absl::Milliseconds(100));
}

Task<void> SleepForever(int* live) {
  Tracked tracked(live);
  co_await Sleep(absl::Hours(1));
  ADD_FAILURE() << "resumed after its loop was destroyed";
}

Task<void> SpawnSleepers(int* live) {
  for (int i = 0; i < 3; ++i) EventLoop::Current()->SpawnDetached(SleepForever(live));
  co_await Yield();  // let them start and suspend
}

TEST(EventLoopTest, DestroyingTheLoopDestroysFramesItHolds) {
  FdLeakCheck no_leaks;
  int live = 0;
  {
    auto loop = NewLoop();
    loop->BlockOn(SpawnSleepers(&live));
    EXPECT_EQ(live, 3);
    EXPECT_EQ(loop->DetachedCount(), 3u);
  }
  EXPECT_EQ(live, 0);  // and ASan sees no leak
}

TEST(EventLoopTest, SpawnedTaskThatNeverStartedIsDestroyedWithTheLoop) {
  int live = 0;
  {
    auto loop = NewLoop();
    auto holder = std::make_shared<int>(1);
    loop->SpawnDetached([](std::shared_ptr<int> keep) -> Task<void> {
      (void)keep;
      co_return;
    }(holder));
    EXPECT_EQ(holder.use_count(), 2);
    loop.reset();
    EXPECT_EQ(holder.use_count(), 1);
  }
  EXPECT_EQ(live, 0);
}

// Each task yields a different number of times, so they finish in an order
// unlike the one they started in (the loop's registry of detached frames
// is reordered by every completion).
Task<void> YieldThenCount(int yields, int* finished) {
  for (int i = 0; i < yields; ++i) co_await Yield();
  ++*finished;
}

Task<void> SpawnManyAndWait(int count, int* finished) {
  EventLoop* loop = EventLoop::Current();
  for (int i = 0; i < count; ++i) loop->SpawnDetached(YieldThenCount((i * 7) % 13, finished));
  EXPECT_EQ(loop->DetachedCount(), static_cast<size_t>(count));
  while (loop->DetachedCount() > 0) co_await Yield();
}

TEST(EventLoopTest, DetachedTasksFinishingInAnyOrderAreAllAccountedFor) {
  int finished = 0;
  int live = 0;
  {
    auto loop = NewLoop();
    loop->BlockOn(SpawnManyAndWait(50, &finished));
    EXPECT_EQ(finished, 50);
    // The registry still works after all that reordering.
    loop->BlockOn(SpawnSleepers(&live));
    EXPECT_EQ(loop->DetachedCount(), 3u);
  }
  EXPECT_EQ(live, 0);
}

Task<void> Throw() {
  co_await Yield();
  throw std::runtime_error("lost");
}

Task<void> SpawnThrowerAndWait() {
  EventLoop::Current()->SpawnDetached(Throw());
  co_await Sleep(absl::Seconds(5));
}

TEST(EventLoopDeathTest, AnExceptionEscapingADetachedTaskTerminates) {
  EXPECT_DEATH(NewLoop()->BlockOn(SpawnThrowerAndWait()), "an exception escaped a detached task");
}

// A loop's pass is not re-entrant (the poller's event buffer, the list of
// tasks being started): running the loop again from inside it is refused.
Task<int> BlockOnTheSameLoop() { co_return EventLoop::Current()->BlockOn(SleepThenSeven()); }

TEST(EventLoopDeathTest, BlockOnFromInsideTheSameLoopIsRefused) {
  EXPECT_DEATH(NewLoop()->BlockOn(BlockOnTheSameLoop()), "not re-entrant");
}

TEST(EventLoopTest, BlockOnAnotherLoopFromInsideALoopIsAllowed) {
  auto inner = NewLoop();
  auto nested = [](EventLoop* other) -> Task<int> { co_return other->BlockOn(SleepThenSeven()); };
  EXPECT_EQ(NewLoop()->BlockOn(nested(inner.get())), 7);
}

}  // namespace
}  // namespace conet
