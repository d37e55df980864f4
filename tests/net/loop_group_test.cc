#include "net/loop_group.h"

#include <mutex>
#include <set>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "net/timer.h"

namespace conet {
namespace {

struct Seen {
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::set<int> indexes;
  int count = 0;
  absl::Notification all_ran;
};

Task<void> Report(Seen* seen, int index, int expected) {
  co_await Sleep(absl::Microseconds(100));
  std::lock_guard<std::mutex> lock(seen->mu);
  seen->threads.insert(std::this_thread::get_id());
  seen->indexes.insert(index);
  if (++seen->count == expected) seen->all_ran.Notify();
}

TEST(LoopGroupTest, EachLoopRunsItsTaskOnItsOwnThread) {
  auto group = LoopGroup::Create(3);
  ASSERT_TRUE(group.ok()) << group.status();
  Seen seen;
  (*group)->SpawnOnEach([&seen](int index) { return Report(&seen, index, 3); });
  (*group)->Start();
  ASSERT_TRUE(seen.all_ran.WaitForNotificationWithTimeout(absl::Seconds(10)));
  (*group)->Stop();
  (*group)->Join();
  std::lock_guard<std::mutex> lock(seen.mu);
  EXPECT_EQ(seen.indexes, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(seen.threads.size(), 3u);
  EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 0u);
}

TEST(LoopGroupTest, ZeroThreadsIsAnError) { EXPECT_FALSE(LoopGroup::Create(0).ok()); }

}  // namespace
}  // namespace conet
