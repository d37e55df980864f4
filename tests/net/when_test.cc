// Tests for WhenAll (net/when_all.h) and WhenAny (net/when_any.h).
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "net/when_any.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::RunTask;

Task<int> After(absl::Duration delay, int value) {
  co_await Sleep(delay);
  co_return value;
}

Task<void> Nothing() { co_return; }

Task<std::tuple<int, std::monostate, int>> ThreeAtOnce() {
  co_return co_await WhenAll(After(absl::Milliseconds(3), 1), Nothing(),
                             After(absl::Milliseconds(1), 3));
}

TEST(WhenAllTest, YieldsEveryResultInArgumentOrder) {
  auto [a, nothing, c] = RunTask(ThreeAtOnce());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(c, 3);
}

Task<absl::Duration> ConcurrentNotSequential() {
  const absl::Time start = absl::Now();
  std::vector<Task<int>> tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(After(absl::Milliseconds(20), i));
  std::vector<int> values = co_await WhenAll(std::move(tasks));
  EXPECT_EQ(values, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  co_return absl::Now() - start;
}

TEST(WhenAllTest, RunsChildrenConcurrently) {
  // Sequentially this would take 200 ms.
  EXPECT_LT(RunTask(ConcurrentNotSequential()), absl::Milliseconds(150));
}

Task<int> ThrowAfter(absl::Duration delay) {
  co_await Sleep(delay);
  throw std::runtime_error("child failed");
}

Task<void> SetAfter(absl::Duration delay, bool* flag) {
  co_await Sleep(delay);
  *flag = true;
}

Task<std::string> ExceptionAfterAllFinish(bool* slow_finished) {
  try {
    co_await WhenAll(ThrowAfter(absl::Milliseconds(1)),
                     SetAfter(absl::Milliseconds(10), slow_finished));
  } catch (const std::runtime_error& error) {
    co_return error.what();
  }
  co_return "no exception";
}

TEST(WhenAllTest, RethrowsOnlyAfterEveryChildCompleted) {
  bool slow_finished = false;
  EXPECT_EQ(RunTask(ExceptionAfterAllFinish(&slow_finished)), "child failed");
  EXPECT_TRUE(slow_finished);
}

// A loser that records how it ended.
Task<int> Loser(absl::Status* ended) {
  *ended = co_await Sleep(absl::Hours(1));
  co_return -1;
}

Task<void> FirstWinsLosersAreCancelledAndJoined() {
  absl::Status loser_ended = absl::UnknownError("still running");
  auto [index, value] = co_await WhenAny(Loser(&loser_ended), After(absl::Milliseconds(2), 7));
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(std::get<1>(value), 7);
  // Joined: the loser has already finished, by cancellation.
  EXPECT_TRUE(absl::IsCancelled(loser_ended)) << loser_ended;
}

TEST(WhenAnyTest, FirstWinsLosersAreCancelledAndJoined) {
  RunTask(FirstWinsLosersAreCancelledAndJoined());
}

Task<void> VectorForm() {
  std::vector<Task<int>> tasks;
  tasks.push_back(After(absl::Milliseconds(30), 0));
  tasks.push_back(After(absl::Milliseconds(1), 1));
  tasks.push_back(After(absl::Milliseconds(30), 2));
  WhenAnyOf<int> first = co_await WhenAny(std::move(tasks));
  EXPECT_EQ(first.index, 1u);
  EXPECT_EQ(first.value, 1);
}

TEST(WhenAnyTest, VectorFormYieldsTheFirst) { RunTask(VectorForm()); }

Task<absl::Status> OuterCancelReachesChildren(std::stop_token token) {
  absl::Status a;
  absl::Status b;
  auto result = co_await WhenAny(Loser(&a), Loser(&b));
  (void)result;
  EXPECT_TRUE(absl::IsCancelled(a));
  EXPECT_TRUE(absl::IsCancelled(b));
  (void)token;
  co_return absl::OkStatus();
}

TEST(WhenAnyTest, StoppingTheAwaiterCancelsEveryChild) {
  std::stop_source source;
  source.request_stop();
  Task<absl::Status> task = OuterCancelReachesChildren(source.get_token());
  task.SetStopToken(source.get_token());
  EXPECT_TRUE(RunTask(std::move(task)).ok());
}

}  // namespace
}  // namespace conet
