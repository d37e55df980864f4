// Tests for LoopGroup (net/loop_group.h): loops on their own threads, and
// RunOn, which runs a task on one of them for a caller on another.
#include "net/loop_group.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/timeout.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::RunTask;

constexpr absl::Duration kPatience = absl::Seconds(10);

// A one-shot event between threads. (std::mutex, which ThreadSanitizer
// sees; the system Abseil's synchronization is not built with it.)
class Event {
 public:
  void Notify() {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  // Returns whether Notify came within `timeout`.
  bool WaitFor(absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

struct Seen {
  std::mutex mu;
  std::set<std::thread::id> threads;
  std::set<int> indexes;
  int count = 0;
  Event all_ran;
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
  ASSERT_TRUE(seen.all_ran.WaitFor(kPatience));
  (*group)->Stop();
  (*group)->Join();
  std::lock_guard<std::mutex> lock(seen.mu);
  EXPECT_EQ(seen.indexes, (std::set<int>{0, 1, 2}));
  EXPECT_EQ(seen.threads.size(), 3u);
  EXPECT_EQ(seen.threads.count(std::this_thread::get_id()), 0u);
}

TEST(LoopGroupTest, ZeroThreadsIsAnError) { EXPECT_FALSE(LoopGroup::Create(0).ok()); }

// Returns a group whose threads run; the destructor stops and joins them.
std::unique_ptr<LoopGroup> StartedGroup(int threads) {
  absl::StatusOr<std::unique_ptr<LoopGroup>> group = LoopGroup::Create(threads);
  if (!group.ok()) {
    ADD_FAILURE() << group.status();
    std::abort();
  }
  (*group)->Start();
  return *std::move(group);
}

Task<absl::StatusOr<int>> Answer() { co_return 42; }
Task<int> Seven() { co_return 7; }
Task<void> Nothing() { co_return; }

TEST(LoopGroupRunOnTest, YieldsTheTasksResult) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  auto answer = [] { return Answer(); };
  absl::StatusOr<int> n = RunTask(group->RunOn(1, answer));
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 42);
  // A plain T comes back as a StatusOr<T>, void as a Status.
  auto seven = [] { return Seven(); };
  absl::StatusOr<int> m = RunTask(group->RunOn(0, seven));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, 7);
  auto nothing = [] { return Nothing(); };
  const absl::Status done = RunTask(group->RunOn(1, nothing));
  CONET_EXPECT_OK(done);
}

struct Where {
  EventLoop* made_on;
  EventLoop* ran_on;
  std::thread::id thread;
};

Task<Where> WhereAmI(EventLoop* made_on) {
  co_await Yield();
  const Where where{made_on, EventLoop::Current(), std::this_thread::get_id()};
  co_return where;
}

// Runs on loop 0: calls loop 1 and checks that it comes back to loop 0.
Task<absl::StatusOr<Where>> HopFromLoopZero(LoopGroup* group) {
  const std::thread::id before = std::this_thread::get_id();
  auto where_am_i = [] { return WhereAmI(EventLoop::Current()); };
  absl::StatusOr<Where> where = co_await group->RunOn(1, where_am_i);
  if (EventLoop::Current() != &group->loop(0) || std::this_thread::get_id() != before) {
    co_return absl::InternalError("the caller resumed on another loop or thread");
  }
  co_return where;
}

TEST(LoopGroupRunOnTest, MakesAndRunsTheTaskOnTheChosenLoop) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  auto hop = [&group] { return HopFromLoopZero(group.get()); };
  absl::StatusOr<Where> where = RunTask(group->RunOn(0, hop));
  ASSERT_TRUE(where.ok()) << where.status();
  EXPECT_EQ(where->made_on, &group->loop(1));
  EXPECT_EQ(where->ran_on, &group->loop(1));
  EXPECT_NE(where->thread, std::this_thread::get_id());
  auto on_zero = [] { return WhereAmI(EventLoop::Current()); };
  absl::StatusOr<Where> zero = RunTask(group->RunOn(0, on_zero));
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_NE(zero->thread, where->thread);
}

Task<absl::Status> NotFound() {
  co_await Yield();
  co_return absl::NotFoundError("no such key");
}

Task<int> Throws() {
  co_await Yield();
  throw std::runtime_error("remote failure");
}

TEST(LoopGroupRunOnTest, PassesStatusAndExceptionsBack) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  auto not_found = [] { return NotFound(); };
  absl::Status status = RunTask(group->RunOn(1, not_found));
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_EQ(status.message(), "no such key");

  auto throws = [] { return Throws(); };
  EXPECT_THROW(
      {
        try {
          (void)RunTask(group->RunOn(1, throws));
        } catch (const std::runtime_error& error) {
          EXPECT_STREQ(error.what(), "remote failure");
          throw;
        }
      },
      std::runtime_error);

  auto cannot_make = []() -> Task<int> { throw std::logic_error("cannot make the task"); };
  EXPECT_THROW((void)RunTask(group->RunOn(1, cannot_make)), std::logic_error);
}

TEST(LoopGroupRunOnTest, AnIndexOutsideTheGroupIsAnError) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  auto nothing = [] { return Nothing(); };
  absl::Status status = RunTask(group->RunOn(2, nothing));
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_EQ(status.message(), "LoopGroup::RunOn: no loop 2 in a group of 2");
  EXPECT_TRUE(absl::IsOutOfRange(RunTask(group->RunOn(-1, nothing))));
}

// A task that sleeps until its stop token is stopped, and what it saw.
struct Sleeper {
  absl::Status slept;
  Event done;
};

Task<absl::Status> SleepUntilStopped(Sleeper* sleeper) {
  absl::Status status = co_await Sleep(absl::InfiniteDuration());
  sleeper->slept = status;
  sleeper->done.Notify();  // the test may end now: touch nothing of its after this
  co_return status;
}

// Checks that the sleeper's sleep was cancelled.
void ExpectStopped(Sleeper& sleeper) {
  ASSERT_TRUE(sleeper.done.WaitFor(kPatience)) << "the task was not stopped";
  EXPECT_TRUE(absl::IsCancelled(sleeper.slept)) << sleeper.slept;
}

// Stops the caller's token from the task's thread, then sleeps.
Task<absl::Status> StopCallerThenSleep(std::stop_source* caller, Sleeper* sleeper) {
  caller->request_stop();
  co_return co_await SleepUntilStopped(sleeper);
}

TEST(LoopGroupRunOnTest, TheCallersStopReachesTheTask) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  std::stop_source caller;
  Sleeper sleeper;
  auto make = [&] { return StopCallerThenSleep(&caller, &sleeper); };
  absl::Status status = RunTask(group->RunOn(1, make, caller.get_token()));
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
  ExpectStopped(sleeper);
}

TEST(LoopGroupRunOnTest, TheCallersDeadlineStopsTheTask) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  Sleeper sleeper;
  auto make = [&] { return SleepUntilStopped(&sleeper); };
  // Through the awaiting task's stop token, as WithTimeout stops it.
  absl::Status status = RunTask(WithTimeout(group->RunOn(1, make), absl::Milliseconds(5)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  ExpectStopped(sleeper);
}

TEST(LoopGroupRunOnTest, AStoppedCallerStartsNothing) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  std::stop_source caller;
  caller.request_stop();
  bool made = false;
  auto make = [&made] {
    made = true;
    return Nothing();
  };
  EXPECT_TRUE(absl::IsCancelled(RunTask(group->RunOn(1, make, caller.get_token()))));
  // Calls run in order on loop 1: had the first started, it would be done.
  auto nothing = [] { return Nothing(); };
  const absl::Status after = RunTask(group->RunOn(1, nothing));
  CONET_EXPECT_OK(after);
  EXPECT_FALSE(made);
}

// Ignores its stop token: stops the caller, then blocks its loop until
// released, and returns a value the caller no longer waits for.
Task<std::string> OutliveTheCaller(std::stop_source* caller, Event* release, bool* saw_stop) {
  caller->request_stop();
  const bool released = release->WaitFor(kPatience);
  std::stop_token token = co_await CurrentStopToken();
  *saw_stop = token.stop_requested();
  co_return std::string(released ? 4096 : 1, 'x');
}

TEST(LoopGroupRunOnTest, ATaskThatFinishesAfterItsCallerWasCancelledIsDropped) {
  test::FdLeakCheck leaks;
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  std::stop_source caller;
  Event release;
  bool saw_stop = false;
  auto make = [&] { return OutliveTheCaller(&caller, &release, &saw_stop); };
  absl::StatusOr<std::string> result = RunTask(group->RunOn(1, make, caller.get_token()));
  EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
  // The caller's frame and loop are gone; the task finishes now.
  release.Notify();
  auto nothing = [] { return Nothing(); };
  const absl::Status after = RunTask(group->RunOn(1, nothing));  // runs after it
  CONET_EXPECT_OK(after);
  EXPECT_TRUE(saw_stop);
}

// Awaits a call to loop 1 that never comes back.
template <typename MakeTask>
Task<void> CallAndWait(LoopGroup* group, MakeTask make) {
  absl::Status status = co_await group->RunOn(1, make);
  ADD_FAILURE() << "the call returned: " << status;
}

Task<absl::Status> NotifyThenSleep(Event* started, Sleeper* sleeper) {
  started->Notify();
  co_return co_await SleepUntilStopped(sleeper);
}

Task<void> OnePass() { co_await Yield(); }

TEST(LoopGroupRunOnTest, DestroyingAWaitingCallerStopsTheTask) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  Event started;
  Sleeper sleeper;
  auto make = [&] { return NotifyThenSleep(&started, &sleeper); };
  {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    (*loop)->SpawnDetached(CallAndWait(group.get(), make));
    (*loop)->BlockOn(OnePass());  // the caller has started its call
    ASSERT_TRUE(started.WaitFor(kPatience));
  }  // the loop destroys the caller's frame while it waits
  ExpectStopped(sleeper);
}

TEST(LoopGroupRunOnTest, ALoopDestroyedBeforeTheTaskFinishedCancelsTheCall) {
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  Event started;
  Sleeper sleeper;
  auto make = [&] { return NotifyThenSleep(&started, &sleeper); };
  std::thread destroyer([&] {
    if (started.WaitFor(kPatience)) group.reset();
  });
  absl::Status status = RunTask(group->RunOn(1, make));
  destroyer.join();
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
  EXPECT_EQ(status.message(), "LoopGroup::RunOn: loop 1 was destroyed before the task finished");
}

Task<int> Square(int n) {
  co_await Yield();
  const int square = n * n;
  co_return square;
}

// Calls every loop of `group` `per_loop` times at once; returns the sum of
// the squares they computed.
Task<absl::StatusOr<int>> FanOut(LoopGroup* group, int per_loop) {
  std::vector<Task<absl::StatusOr<int>>> calls;
  for (int i = 0; i < per_loop * group->size(); ++i) {
    auto square = [i] { return Square(i); };
    calls.push_back(group->RunOn(i % group->size(), square));
  }
  int sum = 0;
  for (absl::StatusOr<int>& result : co_await WhenAll(std::move(calls))) {
    if (!result.ok()) co_return result.status();
    sum += *result;
  }
  co_return sum;
}

TEST(LoopGroupRunOnTest, ManyCallsInFlightFromEveryLoop) {
  std::unique_ptr<LoopGroup> group = StartedGroup(4);
  constexpr int kPerLoop = 50;
  int expected = 0;
  for (int i = 0; i < kPerLoop * 4; ++i) expected += i * i;
  // Each loop fans out to every loop (itself included) at once, and this
  // thread waits for all four.
  std::vector<Task<absl::StatusOr<int>>> fan_outs;
  for (int index = 0; index < 4; ++index) {
    auto fan_out = [&group] { return FanOut(group.get(), kPerLoop); };
    fan_outs.push_back(group->RunOn(index, fan_out));
  }
  for (absl::StatusOr<int>& sum : RunTask(WhenAll(std::move(fan_outs)))) {
    ASSERT_TRUE(sum.ok()) << sum.status();
    EXPECT_EQ(*sum, expected);
  }
}

// Calls `peer` again and again until a call fails.
Task<void> PingPong(LoopGroup* group, int peer, std::atomic<int>* calls, Event* warm) {
  auto nothing = [] { return Nothing(); };
  while (true) {
    absl::Status status = co_await group->RunOn(peer, nothing);
    if (!status.ok()) co_return;
    if (calls->fetch_add(1) == 1000) warm->Notify();
  }
}

TEST(LoopGroupTest, DestroyingTheGroupStopsLoopsThatCallEachOther) {
  test::FdLeakCheck leaks;
  std::unique_ptr<LoopGroup> group = StartedGroup(2);
  std::atomic<int> calls{0};
  Event warm;
  group->SpawnOnEach([&](int index) { return PingPong(group.get(), 1 - index, &calls, &warm); });
  ASSERT_TRUE(warm.WaitFor(kPatience));
  // Stops both loops before joining either, then destroys them with calls
  // in flight both ways.
  group.reset();
}

}  // namespace
}  // namespace conet
