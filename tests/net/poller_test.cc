#include "net/internal/poller.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace conet::internal {
namespace {

TEST(PollerTest, MillisecondTimeoutsRoundUpSoTimersAreNeverEarly) {
  EXPECT_EQ(Poller::ToWaitMilliseconds(0), 0);
  EXPECT_EQ(Poller::ToWaitMilliseconds(1), 1);
  EXPECT_EQ(Poller::ToWaitMilliseconds(1'000'000), 1);
  EXPECT_EQ(Poller::ToWaitMilliseconds(1'000'001), 2);
  EXPECT_EQ(Poller::ToWaitMilliseconds(Poller::kNoTimeout), -1);
}

TEST(PollerTest, MillisecondTimeoutsBeyondWhatAnIntHoldsAreCapped) {
  constexpr int kMax = std::numeric_limits<int>::max();
  // 30 days: past INT_MAX milliseconds (24.8 days).
  EXPECT_EQ(Poller::ToWaitMilliseconds(int64_t{30} * 24 * 3600 * 1'000'000'000), kMax);
  EXPECT_EQ(Poller::ToWaitMilliseconds(std::numeric_limits<int64_t>::max()), kMax);
}

}  // namespace
}  // namespace conet::internal
