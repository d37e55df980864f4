#include "net/cancellation.h"

#include <stop_token>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace conet {
namespace {

TEST(CancellationTest, ByDefaultNothingEndsTheWait) {
  Cancellation none;
  EXPECT_FALSE(none.has_deadline());
  EXPECT_EQ(none.deadline(), absl::InfiniteFuture());
  EXPECT_FALSE(none.token().stop_possible());
}

TEST(CancellationTest, KeepsTheDeadlineToTheNanosecond) {
  const absl::Time when = absl::FromUnixNanos(1'790'000'000'123'456'789);
  Cancellation c(when);
  EXPECT_TRUE(c.has_deadline());
  EXPECT_EQ(c.deadline(), when);
  EXPECT_EQ(Cancellation(absl::UnixEpoch()).deadline(), absl::UnixEpoch());
}

TEST(CancellationTest, InfiniteOrOutOfRangeDeadlinesMeanNone) {
  EXPECT_FALSE(Cancellation(absl::InfiniteFuture()).has_deadline());
  // Past the year 2262 Unix nanoseconds overflow: treated as no deadline.
  EXPECT_FALSE(
      Cancellation(absl::FromCivil(absl::CivilSecond(3000, 1, 1, 0, 0, 0), absl::UTCTimeZone()))
          .has_deadline());
  // A deadline long past is a deadline that has passed.
  Cancellation past(absl::InfinitePast());
  EXPECT_TRUE(past.has_deadline());
  EXPECT_LT(past.deadline(), absl::Now());
}

TEST(CancellationTest, TokenAndDeadlineTogether) {
  std::stop_source stop;
  const absl::Time when = absl::Now() + absl::Seconds(5);
  Cancellation both(stop.get_token(), when);
  EXPECT_TRUE(both.token().stop_possible());
  EXPECT_EQ(both.deadline(), absl::FromUnixNanos(absl::ToUnixNanos(when)));
  EXPECT_EQ(sizeof(Cancellation), 16u) << "kept small: every awaiter holds one";
}

}  // namespace
}  // namespace conet
