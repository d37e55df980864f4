#include "net/timer.h"

#include <stop_token>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/event_loop.h"
#include "net/task_group.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::RunTask;
using ::conet::test::SleepThenRecord;

Task<absl::Duration> TimeSleep(absl::Duration duration) {
  const absl::Time start = absl::Now();
  absl::Status slept = co_await Sleep(duration);
  EXPECT_TRUE(slept.ok()) << slept;
  co_return absl::Now() - start;
}

TEST(TimerTest, SleepLastsAtLeastItsDuration) {
  const absl::Duration elapsed = RunTask(TimeSleep(absl::Milliseconds(20)));
  EXPECT_GE(elapsed, absl::Milliseconds(20));
  EXPECT_LT(elapsed, absl::Milliseconds(500));  // bounded, generous for CI
}

Task<absl::Duration> MeanOfSleeps(absl::Duration each, int count) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < count; ++i) co_await Sleep(each);
  co_return (absl::Now() - start) / count;
}

// Millisecond rounding (plain epoll_wait) would make each sleep >= 1 ms.
TEST(TimerTest, SleepHasSubMillisecondPrecision) {
  const absl::Duration mean = RunTask(MeanOfSleeps(absl::Microseconds(100), 50));
  EXPECT_GE(mean, absl::Microseconds(100));
  EXPECT_LT(mean, absl::Microseconds(900));
}

Task<void> ThreeSleepers(std::vector<int>* order) {
  TaskGroup group;
  group.Spawn(SleepThenRecord(absl::Milliseconds(30), 3, order));
  group.Spawn(SleepThenRecord(absl::Milliseconds(10), 1, order));
  group.Spawn(SleepThenRecord(absl::Milliseconds(20), 2, order));
  EXPECT_TRUE((co_await group.Join()).ok());
}

TEST(TimerTest, TimersFireInDeadlineOrder) {
  std::vector<int> order;
  RunTask(ThreeSleepers(&order));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

Task<absl::Status> SleepWith(absl::Duration duration, Cancellation cancel) {
  co_return co_await Sleep(duration, std::move(cancel));
}

TEST(TimerTest, StoppedTokenCompletesAtOnceWithCancelled) {
  std::stop_source source;
  source.request_stop();
  EXPECT_TRUE(absl::IsCancelled(RunTask(SleepWith(absl::Hours(1), source.get_token()))));
}

TEST(TimerTest, DeadlineEndsALongSleepWithDeadlineExceeded) {
  const absl::Time start = absl::Now();
  absl::Status status = RunTask(SleepWith(absl::Hours(1), Within(absl::Milliseconds(5))));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(TimerTest, StopFromAnotherThreadCancelsPromptly) {
  std::stop_source source;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(5));  // the stop is the event under test
    source.request_stop();
  });
  const absl::Time start = absl::Now();
  absl::Status status = (*loop)->BlockOn(SleepWith(absl::Hours(1), source.get_token()));
  stopper.join();
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

Task<void> CountResumptions(std::stop_token token, int* resumed, absl::Status* result) {
  *result = co_await Sleep(absl::ZeroDuration() + absl::Nanoseconds(1), token);
  ++*resumed;
}

Task<void> RaceStopAgainstExpiry(int rounds, int* resumed_total, int* cancelled) {
  for (int i = 0; i < rounds; ++i) {
    std::stop_source source;
    int resumed = 0;
    absl::Status result;
    TaskGroup group;
    group.Spawn(CountResumptions(source.get_token(), &resumed, &result));
    co_await Yield();       // the sleeper is suspended, its timer due now
    source.request_stop();  // both the timer and the stop are ready now
    EXPECT_TRUE((co_await group.Join()).ok());
    EXPECT_EQ(resumed, 1);
    *resumed_total += resumed;
    if (absl::IsCancelled(result))
      ++*cancelled;
    else
      EXPECT_TRUE(result.ok()) << result;
  }
}

TEST(TimerTest, StopAtTheMomentOfExpiryResumesExactlyOnce) {
  int resumed = 0;
  int cancelled = 0;
  RunTask(RaceStopAgainstExpiry(200, &resumed, &cancelled));
  EXPECT_EQ(resumed, 200);
}

}  // namespace
}  // namespace conet
