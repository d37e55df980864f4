#include "net/timeout.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/timer.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::RunTask;

Task<absl::StatusOr<int>> SlowValue(absl::Duration delay, int value) {
  if (absl::Status slept = co_await Sleep(delay); !slept.ok()) co_return slept;
  co_return value;
}

TEST(TimeoutTest, FastTaskKeepsItsValue) {
  absl::StatusOr<int> result =
      RunTask(WithTimeout(SlowValue(absl::Milliseconds(1), 5), absl::Seconds(10)));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(*result, 5);
}

TEST(TimeoutTest, SlowTaskEndsWithDeadlineExceeded) {
  const absl::Time start = absl::Now();
  absl::StatusOr<int> result =
      RunTask(WithTimeout(SlowValue(absl::Hours(1), 5), absl::Milliseconds(10)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(10));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

Task<absl::Status> InnerOperationSeesCancellation(absl::Status* inner) {
  auto work = [](absl::Status* out) -> Task<absl::Status> {
    *out = co_await Sleep(absl::Hours(1));
    co_return *out;
  };
  co_return co_await WithDeadline(work(inner), absl::Now() + absl::Milliseconds(2));
}

TEST(TimeoutTest, OperationsInsideTheTaskAreCancelled) {
  absl::Status inner;
  absl::Status outer = RunTask(InnerOperationSeesCancellation(&inner));
  EXPECT_TRUE(absl::IsDeadlineExceeded(outer)) << outer;
  EXPECT_TRUE(absl::IsCancelled(inner)) << inner;  // finished before WithDeadline returned
}

Task<absl::StatusOr<int>> InnerLimit() {
  co_return co_await WithTimeout(SlowValue(absl::Hours(1), 1), absl::Milliseconds(2));
}

TEST(TimeoutTest, NestedLimitsTheShorterWins) {
  const absl::Time start = absl::Now();
  absl::StatusOr<int> result = RunTask(WithTimeout(InnerLimit(), absl::Seconds(30)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(TimeoutTest, DeadlineInThePastFailsFast) {
  absl::StatusOr<int> result =
      RunTask(WithDeadline(SlowValue(absl::Hours(1), 5), absl::Now() - absl::Seconds(1)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
}

}  // namespace
}  // namespace conet
