#include "net/sync.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/bounded_queue.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/task_group.h"
#include "net/testing.h"
#include "net/timer.h"

namespace conet {
namespace {

using ::conet::test::RunTask;

// --- Helpers ---------------------------------------------------------------

// Counts tasks down to zero; the test's thread waits for that, bounded.
class Countdown {
 public:
  explicit Countdown(int count) : left_(count) {}
  void Done() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--left_ == 0) all_done_.notify_all();
  }
  bool WaitFor(absl::Duration limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return all_done_.wait_for(lock, absl::ToChronoNanoseconds(limit),
                              [this] { return left_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable all_done_;
  int left_;
};

Task<void> ThenCountDown(Task<void> task, Countdown* countdown) {
  co_await std::move(task);
  countdown->Done();
}

// Runs `first` on loop 0 and `second` on loop 1 of a LoopGroup, each on
// its own thread; returns whether both finished within 30 seconds. The
// group is stopped and joined before it returns.
bool RunOnTwoLoops(Task<void> first, Task<void> second) {
  auto group = LoopGroup::Create(2);
  if (!group.ok()) {
    ADD_FAILURE() << group.status();
    return false;
  }
  Countdown countdown(2);
  Task<void> tasks[2] = {std::move(first), std::move(second)};
  (*group)->SpawnOnEach(
      [&](int index) { return ThenCountDown(std::move(tasks[index]), &countdown); });
  (*group)->Start();
  const bool finished = countdown.WaitFor(absl::Seconds(30));
  (*group)->Stop();
  (*group)->Join();
  return finished;
}

// Starts `task` by hand, on this thread: it runs until it first suspends.
// Destroying the Task then destroys its frame where it waits.
void Start(Task<void>& task) { task.handle().resume(); }

// Starts `by_token`, which waits with `stop`'s token, and `by_task`, which
// waits with no Cancellation; once both wait, stops the first through
// `stop` and the second through its task's own (ambient) token.
Task<void> StopTwoWays(std::stop_source stop, Task<void> by_token, Task<void> by_task) {
  TaskGroup token_group;
  token_group.Spawn(std::move(by_token));
  TaskGroup task_group;
  task_group.Spawn(std::move(by_task));
  co_await Yield();
  stop.request_stop();
  task_group.RequestStop();
  CONET_CO_ASSERT_OK(co_await token_group.Join());
  CONET_CO_ASSERT_OK(co_await task_group.Join());
}

// --- AsyncEvent ------------------------------------------------------------

Task<void> WaitForEvent(AsyncEvent* event, Cancellation cancel, absl::Status* result) {
  *result = co_await event->Wait(cancel);
}

Task<void> WaitThenRecord(AsyncEvent* event, int id, std::vector<int>* order) {
  CONET_CO_ASSERT_OK(co_await event->Wait());
  order->push_back(id);
}

TEST(AsyncEventTest, WaitOnASetEventCompletesAtOnce) {
  AsyncEvent event(/*set=*/true);
  absl::Status result = absl::UnknownError("not run");
  RunTask(WaitForEvent(&event, Cancellation(), &result));
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_TRUE(event.IsSet());
}

Task<void> SetWakesEveryWaiter(std::vector<int>* order) {
  AsyncEvent event;
  TaskGroup group;
  for (int id = 1; id <= 3; ++id) group.Spawn(WaitThenRecord(&event, id, order));
  co_await Yield();  // every waiter is suspended now
  EXPECT_TRUE(order->empty());
  event.Set();
  CONET_CO_ASSERT_OK(co_await group.Join());
}

TEST(AsyncEventTest, SetWakesEveryWaiterInTheOrderTheyCame) {
  std::vector<int> order;
  RunTask(SetWakesEveryWaiter(&order));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

Task<void> ResetThenWait(absl::Status* result) {
  AsyncEvent event(/*set=*/true);
  event.Reset();
  EXPECT_FALSE(event.IsSet());
  *result = co_await event.Wait(Within(absl::Milliseconds(5)));
}

TEST(AsyncEventTest, ResetMakesWaitsSuspendAgain) {
  absl::Status result;
  RunTask(ResetThenWait(&result));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result)) << result;
}

Task<void> StopAWait(absl::Status* by_token, absl::Status* by_task) {
  AsyncEvent event;
  std::stop_source stop;
  co_await StopTwoWays(stop, WaitForEvent(&event, stop.get_token(), by_token),
                       WaitForEvent(&event, Cancellation(), by_task));
  event.Set();  // nobody left to wake
}

TEST(AsyncEventTest, StopEndsAWaitWithCancelled) {
  absl::Status by_token;
  absl::Status by_task;
  RunTask(StopAWait(&by_token, &by_task));
  EXPECT_TRUE(absl::IsCancelled(by_token)) << by_token;
  EXPECT_TRUE(absl::IsCancelled(by_task)) << by_task;
}

Task<void> DestroyAWaiter(AsyncEvent* event) {
  absl::Status never;
  Task<void> waiter = WaitForEvent(event, Cancellation(), &never);
  Start(waiter);
  waiter = Task<void>();  // the frame goes while it waits
  event->Set();           // must not touch it
  co_await Yield();
}

TEST(AsyncEventTest, DestroyedWaiterLeavesNoRegistration) {
  AsyncEvent event;
  RunTask(DestroyAWaiter(&event));
  EXPECT_TRUE(event.IsSet());
}

// Loop 0 sets `ping` and waits for `pong`; loop 1 the other way round.
Task<void> PingPong(AsyncEvent* mine, AsyncEvent* theirs, bool serve_first, int rounds, int* done) {
  for (int i = 0; i < rounds; ++i) {
    if (serve_first) theirs->Set();
    CONET_CO_ASSERT_OK(co_await mine->Wait());
    mine->Reset();
    if (!serve_first) theirs->Set();
    ++*done;
  }
}

TEST(AsyncEventTest, EventsWakeTasksOnAnotherLoop) {
  AsyncEvent ping;
  AsyncEvent pong;
  int first_done = 0;
  int second_done = 0;
  ASSERT_TRUE(RunOnTwoLoops(PingPong(&pong, &ping, true, 1000, &first_done),
                            PingPong(&ping, &pong, false, 1000, &second_done)));
  EXPECT_EQ(first_done, 1000);
  EXPECT_EQ(second_done, 1000);
}

// --- AsyncMutex ------------------------------------------------------------

Task<void> LockThenRecord(AsyncMutex* mutex, int id, std::vector<int>* order) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(AsyncMutex::Guard guard, co_await mutex->Lock());
  order->push_back(id);
  co_await Yield();  // hold it across a suspension
}

Task<void> LockWith(AsyncMutex* mutex, Cancellation cancel, absl::Status* result) {
  absl::StatusOr<AsyncMutex::Guard> guard = co_await mutex->Lock(cancel);
  *result = guard.status();
}

TEST(AsyncMutexTest, OneHolderAtATime) {
  AsyncMutex mutex;
  std::optional<AsyncMutex::Guard> guard = mutex.TryLock();
  ASSERT_TRUE(guard.has_value());
  EXPECT_FALSE(mutex.TryLock().has_value());
  guard->Unlock();
  EXPECT_TRUE(mutex.TryLock().has_value());  // and its guard unlocks again
  EXPECT_TRUE(mutex.TryLock().has_value());
}

Task<void> WaitersInOrder(std::vector<int>* order, bool* newcomer_got_it) {
  AsyncMutex mutex;
  std::optional<AsyncMutex::Guard> held = mutex.TryLock();
  TaskGroup group;
  for (int id = 1; id <= 3; ++id) group.Spawn(LockThenRecord(&mutex, id, order));
  co_await Yield();  // all three wait
  EXPECT_TRUE(order->empty());
  held.reset();
  // The lock went straight to the first waiter, not to whoever asks next.
  *newcomer_got_it = mutex.TryLock().has_value();
  CONET_CO_ASSERT_OK(co_await group.Join());
}

TEST(AsyncMutexTest, UnlockHandsTheLockToWaitersInFifoOrder) {
  std::vector<int> order;
  bool newcomer_got_it = true;
  RunTask(WaitersInOrder(&order, &newcomer_got_it));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  EXPECT_FALSE(newcomer_got_it);
}

Task<void> CancelALocker(absl::Status* stopped, absl::Status* timed_out, std::vector<int>* order) {
  AsyncMutex mutex;
  std::optional<AsyncMutex::Guard> held = mutex.TryLock();
  std::stop_source stop;
  TaskGroup group;
  group.Spawn(LockWith(&mutex, stop.get_token(), stopped));
  group.Spawn(LockWith(&mutex, Within(absl::Milliseconds(2)), timed_out));
  group.Spawn(LockThenRecord(&mutex, 3, order));
  co_await Yield();
  stop.request_stop();
  co_await Sleep(absl::Milliseconds(5));  // past the second one's deadline
  held.reset();                           // the third waiter gets it
  CONET_CO_ASSERT_OK(co_await group.Join());
  EXPECT_TRUE(mutex.TryLock().has_value());
}

TEST(AsyncMutexTest, CancelledAndTimedOutLockersLeaveTheQueue) {
  absl::Status stopped;
  absl::Status timed_out;
  std::vector<int> order;
  RunTask(CancelALocker(&stopped, &timed_out, &order));
  EXPECT_TRUE(absl::IsCancelled(stopped)) << stopped;
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out)) << timed_out;
  EXPECT_EQ(order, (std::vector<int>{3}));
}

Task<void> DestroyAGrantedLocker(bool* relocked) {
  AsyncMutex mutex;
  std::optional<AsyncMutex::Guard> held = mutex.TryLock();
  absl::Status never;
  Task<void> waiter = LockWith(&mutex, Cancellation(), &never);
  Start(waiter);
  held.reset();           // granted to the waiter, which has not run yet
  waiter = Task<void>();  // its frame goes before it could take the lock
  *relocked = mutex.TryLock().has_value();
  co_await Yield();
}

TEST(AsyncMutexTest, LockGrantedToADestroyedFrameIsUnlocked) {
  bool relocked = false;
  RunTask(DestroyAGrantedLocker(&relocked));
  EXPECT_TRUE(relocked);
}

TEST(AsyncMutexTest, ReleasedGuardLeavesTheMutexLockedUntilUnlock) {
  AsyncMutex mutex;
  std::optional<AsyncMutex::Guard> guard = mutex.TryLock();
  ASSERT_TRUE(guard.has_value());
  EXPECT_EQ(guard->Release(), &mutex);
  guard.reset();
  EXPECT_FALSE(mutex.TryLock().has_value());
  mutex.Unlock();
  EXPECT_TRUE(mutex.TryLock().has_value());
}

TEST(AsyncMutexDeathTest, UnlockingAnUnlockedMutexAborts) {
  AsyncMutex mutex;
  EXPECT_DEATH(mutex.Unlock(), "AsyncMutex::Unlock: the mutex is not locked");
}

// Increments `*counter` `rounds` times, each a read and a write with a
// suspension between, under the mutex.
Task<void> IncrementUnderLock(AsyncMutex* mutex, int rounds, int* counter) {
  for (int i = 0; i < rounds; ++i) {
    CONET_CO_ASSERT_OK_AND_ASSIGN(AsyncMutex::Guard guard, co_await mutex->Lock());
    const int seen = *counter;
    co_await Yield();
    *counter = seen + 1;
  }
}

TEST(AsyncMutexTest, ExcludesTasksOnOtherLoops) {
  AsyncMutex mutex;
  int counter = 0;
  ASSERT_TRUE(RunOnTwoLoops(IncrementUnderLock(&mutex, 2000, &counter),
                            IncrementUnderLock(&mutex, 2000, &counter)));
  EXPECT_EQ(counter, 4000);
}

// --- AsyncSemaphore --------------------------------------------------------

Task<void> AcquireThenRecord(AsyncSemaphore* permits, int id, std::vector<int>* order) {
  CONET_CO_ASSERT_OK(co_await permits->Acquire());
  order->push_back(id);
}

Task<void> AcquireWith(AsyncSemaphore* permits, Cancellation cancel, absl::Status* result) {
  *result = co_await permits->Acquire(cancel);
}

Task<void> TakeFreePermits(AsyncSemaphore* permits) {
  CONET_CO_ASSERT_OK(co_await permits->Acquire());
  CONET_CO_ASSERT_OK(co_await permits->Acquire());
}

TEST(AsyncSemaphoreTest, AcquireTakesFreePermitsAtOnce) {
  AsyncSemaphore permits(3);
  RunTask(TakeFreePermits(&permits));
  EXPECT_EQ(permits.available(), 1);
  EXPECT_TRUE(permits.TryAcquire());
  EXPECT_FALSE(permits.TryAcquire());
  permits.Release(2);
  EXPECT_EQ(permits.available(), 2);
}

Task<void> ReleaseWakesInOrder(std::vector<int>* order, std::vector<int>* after_two) {
  AsyncSemaphore permits(0);
  TaskGroup group;
  for (int id = 1; id <= 3; ++id) group.Spawn(AcquireThenRecord(&permits, id, order));
  co_await Yield();
  permits.Release(2);
  EXPECT_FALSE(permits.TryAcquire());  // both went to waiters
  co_await Yield();
  *after_two = *order;
  permits.Release(1);
  CONET_CO_ASSERT_OK(co_await group.Join());
  EXPECT_EQ(permits.available(), 0);
}

TEST(AsyncSemaphoreTest, ReleaseWakesAsManyWaitersInFifoOrder) {
  std::vector<int> order;
  std::vector<int> after_two;
  RunTask(ReleaseWakesInOrder(&order, &after_two));
  EXPECT_EQ(after_two, (std::vector<int>{1, 2}));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

Task<void> CancelAcquires(AsyncSemaphore* permits, absl::Status* stopped, absl::Status* timed_out) {
  std::stop_source stop;
  TaskGroup group;
  group.Spawn(AcquireWith(permits, stop.get_token(), stopped));
  group.Spawn(AcquireWith(permits, Within(absl::Milliseconds(2)), timed_out));
  co_await Yield();
  stop.request_stop();
  CONET_CO_ASSERT_OK(co_await group.Join());
}

TEST(AsyncSemaphoreTest, StopAndDeadlineEndAnAcquireAndTakeNothing) {
  AsyncSemaphore permits(0);
  absl::Status stopped;
  absl::Status timed_out;
  RunTask(CancelAcquires(&permits, &stopped, &timed_out));
  EXPECT_TRUE(absl::IsCancelled(stopped)) << stopped;
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out)) << timed_out;
  permits.Release(1);
  EXPECT_EQ(permits.available(), 1);  // nobody is left waiting for it
}

Task<void> DestroyWaiters(AsyncSemaphore* permits) {
  absl::Status never;
  Task<void> waiting = AcquireWith(permits, Cancellation(), &never);
  Start(waiting);
  waiting = Task<void>();  // destroyed while it waits
  Task<void> granted = AcquireWith(permits, Cancellation(), &never);
  Start(granted);
  permits->Release(1);     // granted to it; it has not run yet
  granted = Task<void>();  // destroyed before it could take the permit
  co_await Yield();
}

TEST(AsyncSemaphoreTest, DestroyedWaitersLeaveNoRegistrationAndLoseNoPermit) {
  AsyncSemaphore permits(0);
  RunTask(DestroyWaiters(&permits));
  EXPECT_EQ(permits.available(), 1);
}

Task<absl::Status> AcquireOne(AsyncSemaphore* permits) { co_return co_await permits->Acquire(); }

TEST(AsyncSemaphoreTest, OnlyAWaitNeedsALoop) {
  AsyncSemaphore permits(1);
  Task<absl::Status> first = AcquireOne(&permits);
  first.handle().resume();  // no loop runs on this thread
  ASSERT_TRUE(first.handle().done());
  EXPECT_TRUE(first.handle().promise().TakeResult().ok());
  Task<absl::Status> second = AcquireOne(&permits);
  second.handle().resume();
  ASSERT_TRUE(second.handle().done());
  const absl::Status status = second.handle().promise().TakeResult();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_EQ(status.message(), "AsyncSemaphore::Acquire: no EventLoop is running on this thread");
}

// A permit released on one loop while the waiter, on the other, is being
// stopped: either the waiter takes it or it stays in the semaphore.
struct StopRace {
  AsyncSemaphore permits{0};  // what is raced for
  AsyncSemaphore waiting{0};  // the waiter has published its stop source
  AsyncSemaphore next{1};     // the granter has finished a round
  std::mutex mu;
  std::stop_source stop;  // the round's, under mu
  int granted = 0;
  int cancelled = 0;
};

Task<void> WaitInTheRace(StopRace* race, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    CONET_CO_ASSERT_OK(co_await race->next.Acquire());
    std::stop_source stop;
    {
      std::lock_guard<std::mutex> lock(race->mu);
      race->stop = stop;
    }
    race->waiting.Release();
    const absl::Status status = co_await race->permits.Acquire(stop.get_token());
    if (status.ok()) {
      ++race->granted;
    } else {
      EXPECT_TRUE(absl::IsCancelled(status)) << status;
      ++race->cancelled;
    }
  }
}

Task<void> GrantAndStop(StopRace* race, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    CONET_CO_ASSERT_OK(co_await race->waiting.Acquire());
    std::stop_source stop;
    {
      std::lock_guard<std::mutex> lock(race->mu);
      stop = race->stop;
    }
    race->permits.Release(1);
    stop.request_stop();
    race->next.Release();
  }
}

TEST(AsyncSemaphoreTest, GrantRacingWithAStopFromAnotherLoopLosesNoPermit) {
  constexpr int kRounds = 3000;
  StopRace race;
  ASSERT_TRUE(RunOnTwoLoops(GrantAndStop(&race, kRounds), WaitInTheRace(&race, kRounds)));
  EXPECT_EQ(race.granted + race.cancelled, kRounds);
  EXPECT_EQ(race.granted + race.permits.available(), kRounds);
  RecordProperty("granted", race.granted);  // how the race went, in the XML
  RecordProperty("cancelled", race.cancelled);
}

Task<void> ReleaseOneByOne(AsyncSemaphore* permits, int count, std::atomic<bool>* done) {
  for (int i = 0; i < count; ++i) {
    permits->Release(1);
    co_await Yield();
  }
  done->store(true);
}

Task<void> AcquireUntilDone(AsyncSemaphore* permits, std::atomic<bool>* done, int* acquired) {
  while (!done->load()) {
    const absl::Status status = co_await permits->Acquire(Within(absl::Microseconds(20)));
    if (status.ok()) ++*acquired;
  }
}

Task<void> AcquireOnManyTasks(AsyncSemaphore* permits, std::atomic<bool>* done, int* acquired) {
  TaskGroup group;
  for (int i = 0; i < 8; ++i) group.Spawn(AcquireUntilDone(permits, done, acquired));
  CONET_CO_ASSERT_OK(co_await group.Join());
}

TEST(AsyncSemaphoreTest, GrantRacingWithDeadlinesLosesNoPermit) {
  constexpr int kPermits = 20000;
  AsyncSemaphore permits(0);
  std::atomic<bool> done{false};
  int acquired = 0;
  ASSERT_TRUE(RunOnTwoLoops(ReleaseOneByOne(&permits, kPermits, &done),
                            AcquireOnManyTasks(&permits, &done, &acquired)));
  EXPECT_EQ(acquired + permits.available(), kPermits);
}

// --- ConnectionLimiter -----------------------------------------------------

TEST(ConnectionLimiterTest, TryAcquireStopsAtTheLimitAndPermitsFreeTheirPlace) {
  ConnectionLimiter limiter(2);
  std::optional<ConnectionLimiter::Permit> first = limiter.TryAcquire();
  std::optional<ConnectionLimiter::Permit> second = limiter.TryAcquire();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(limiter.TryAcquire().has_value());
  EXPECT_EQ(limiter.in_use(), 2);
  ConnectionLimiter::Permit moved = *std::move(first);
  first.reset();  // moved from: frees nothing
  EXPECT_EQ(limiter.in_use(), 2);
  second = std::move(moved);  // the permit it held is freed
  EXPECT_EQ(limiter.in_use(), 1);
  second.reset();
  EXPECT_EQ(limiter.in_use(), 0);
  EXPECT_EQ(limiter.limit(), 2);
}

Task<void> HoldAPermit(ConnectionLimiter* limiter, std::vector<int>* order) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(ConnectionLimiter::Permit permit, co_await limiter->Acquire());
  order->push_back(limiter->in_use());
}

Task<void> AcquireWaitsForAPlace(std::vector<int>* order) {
  ConnectionLimiter limiter(1);
  std::optional<ConnectionLimiter::Permit> held = limiter.TryAcquire();
  TaskGroup group;
  group.Spawn(HoldAPermit(&limiter, order));
  co_await Yield();
  EXPECT_TRUE(order->empty());
  held.reset();
  CONET_CO_ASSERT_OK(co_await group.Join());
  EXPECT_EQ(limiter.in_use(), 0);
}

TEST(ConnectionLimiterTest, AcquireWaitsUntilAPermitIsFreed) {
  std::vector<int> order;
  RunTask(AcquireWaitsForAPlace(&order));
  EXPECT_EQ(order, (std::vector<int>{1}));
}

// --- BoundedQueue ----------------------------------------------------------

Task<void> PushValue(BoundedQueue<int>* queue, int value, Cancellation cancel,
                     absl::Status* result) {
  *result = co_await queue->Push(std::move(value), cancel);
}

Task<void> PopInto(BoundedQueue<int>* queue, Cancellation cancel, absl::StatusOr<int>* result) {
  *result = co_await queue->Pop(cancel);
}

Task<void> PopAndRecord(BoundedQueue<int>* queue, std::vector<int>* order) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(int value, co_await queue->Pop());
  order->push_back(value);
}

TEST(BoundedQueueTest, TryPushAndTryPopKeepOrderAndCapacity) {
  BoundedQueue<int> queue(2);
  CONET_EXPECT_OK(queue.TryPush(1));
  CONET_EXPECT_OK(queue.TryPush(2));
  int third = 3;
  const absl::Status full = queue.TryPush(std::move(third));
  EXPECT_TRUE(absl::IsUnavailable(full)) << full;
  EXPECT_EQ(queue.size(), 2u);
  EXPECT_EQ(queue.TryPop().value_or(-1), 1);
  EXPECT_EQ(queue.TryPop().value_or(-1), 2);
  const absl::StatusOr<int> empty = queue.TryPop();
  EXPECT_TRUE(absl::IsUnavailable(empty.status())) << empty.status();
  EXPECT_EQ(queue.capacity(), 2u);
}

Task<void> PushersWaitWhileFull(std::vector<int>* order) {
  BoundedQueue<int> queue(1);
  CONET_CO_ASSERT_OK(queue.TryPush(1));
  absl::Status pushed[3];
  TaskGroup group;
  for (int i = 0; i < 3; ++i) group.Spawn(PushValue(&queue, i + 2, Cancellation(), &pushed[i]));
  co_await Yield();  // all three wait for room
  EXPECT_EQ(queue.size(), 1u);
  for (int i = 0; i < 4; ++i) {
    CONET_CO_ASSERT_OK_AND_ASSIGN(int value, co_await queue.Pop());
    order->push_back(value);
  }
  CONET_CO_ASSERT_OK(co_await group.Join());
  for (const absl::Status& status : pushed) EXPECT_TRUE(status.ok()) << status;
}

TEST(BoundedQueueTest, PushWaitsWhileFullAndPushersGoInFifoOrder) {
  std::vector<int> order;
  RunTask(PushersWaitWhileFull(&order));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
}

Task<void> PoppersWaitWhileEmpty(std::vector<int>* order) {
  BoundedQueue<int> queue(4);
  TaskGroup group;
  for (int i = 0; i < 3; ++i) group.Spawn(PopAndRecord(&queue, order));
  co_await Yield();  // all three wait for a value
  EXPECT_TRUE(order->empty());
  for (int value = 1; value <= 3; ++value)
    CONET_CO_ASSERT_OK(co_await queue.Push(std::move(value)));
  // The values went to the waiters, not to whoever asks next.
  const absl::StatusOr<int> newcomer = queue.TryPop();
  EXPECT_TRUE(absl::IsUnavailable(newcomer.status())) << newcomer.status();
  CONET_CO_ASSERT_OK(co_await group.Join());
}

TEST(BoundedQueueTest, PopWaitsWhileEmptyAndPoppersGoInFifoOrder) {
  std::vector<int> order;
  RunTask(PoppersWaitWhileEmpty(&order));
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
}

Task<void> CloseWithWaiters(std::vector<int>* popped, absl::StatusOr<int>* end,
                            absl::Status* refused) {
  BoundedQueue<int> full(1);
  CONET_CO_ASSERT_OK(full.TryPush(1));
  BoundedQueue<int> empty(1);
  TaskGroup group;
  group.Spawn(PushValue(&full, 2, Cancellation(), refused));  // waits for room
  group.Spawn(PopInto(&empty, Cancellation(), end));          // waits for a value
  co_await Yield();
  full.Close();
  empty.Close();
  CONET_CO_ASSERT_OK(co_await group.Join());
  // What was queued is still there to drain; then the end.
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<int> next = co_await full.Pop();
    if (next.ok()) {
      popped->push_back(*next);
    } else {
      EXPECT_TRUE(absl::IsOutOfRange(next.status())) << next.status();
      popped->push_back(-1);
    }
  }
}

TEST(BoundedQueueTest, CloseFailsWaitingPushesAndEndsPopsAfterTheDrain) {
  std::vector<int> popped;
  absl::StatusOr<int> end;
  absl::Status refused;
  RunTask(CloseWithWaiters(&popped, &end, &refused));
  EXPECT_EQ(popped, (std::vector<int>{1, -1}));
  EXPECT_TRUE(absl::IsOutOfRange(end.status())) << end.status();
  EXPECT_EQ(end.status().message(), "BoundedQueue::Pop: the queue is closed and empty");
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(refused.message(), "BoundedQueue::Push: the queue is closed");
}

TEST(BoundedQueueTest, ClosedQueueRefusesPushesAndDrainsWithoutALoop) {
  BoundedQueue<std::string> queue(4);
  CONET_EXPECT_OK(queue.TryPush("kept"));
  queue.Close();
  EXPECT_TRUE(queue.closed());
  std::string refused = "refused";
  const absl::Status status = queue.TryPush(std::move(refused));
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_EQ(refused, "refused");  // a failed push leaves the value alone
  EXPECT_EQ(queue.TryPop().value_or(""), "kept");
  EXPECT_TRUE(absl::IsOutOfRange(queue.TryPop().status()));
}

Task<void> CancelQueueWaits(absl::Status* push_stopped, absl::StatusOr<int>* pop_timed_out,
                            absl::StatusOr<int>* pop_stopped_by_task, int* value_after) {
  BoundedQueue<int> full(1);
  CONET_CO_ASSERT_OK(full.TryPush(1));
  BoundedQueue<int> empty(1);
  TaskGroup timed;
  timed.Spawn(PopInto(&empty, Within(absl::Milliseconds(2)), pop_timed_out));
  std::stop_source stop;
  co_await StopTwoWays(stop, PushValue(&full, 2, stop.get_token(), push_stopped),
                       PopInto(&empty, Cancellation(), pop_stopped_by_task));
  CONET_CO_ASSERT_OK(co_await timed.Join());
  // The cancelled push left no room taken and no value behind.
  CONET_CO_ASSERT_OK_AND_ASSIGN(*value_after, full.TryPop());
  EXPECT_TRUE(absl::IsUnavailable(full.TryPop().status()));
  CONET_CO_ASSERT_OK(empty.TryPush(5));  // and the cancelled pops took nothing
  EXPECT_EQ(empty.TryPop().value_or(-1), 5);
}

TEST(BoundedQueueTest, StopAndDeadlineEndPushesAndPops) {
  absl::Status push_stopped;
  absl::StatusOr<int> pop_timed_out;
  absl::StatusOr<int> pop_stopped_by_task;
  int value_after = 0;
  RunTask(CancelQueueWaits(&push_stopped, &pop_timed_out, &pop_stopped_by_task, &value_after));
  EXPECT_TRUE(absl::IsCancelled(push_stopped)) << push_stopped;
  EXPECT_TRUE(absl::IsDeadlineExceeded(pop_timed_out.status())) << pop_timed_out.status();
  EXPECT_TRUE(absl::IsCancelled(pop_stopped_by_task.status())) << pop_stopped_by_task.status();
  EXPECT_EQ(value_after, 1);
}

Task<void> PushKeepingTheValue(BoundedQueue<std::string>* queue, std::string* value,
                               Cancellation cancel, absl::Status* result) {
  *result = co_await queue->Push(std::move(*value), cancel);
}

Task<void> CancelledPushKeepsItsValue(std::string* value, absl::Status* result) {
  BoundedQueue<std::string> queue(1);
  CONET_CO_ASSERT_OK(queue.TryPush("first"));
  co_await PushKeepingTheValue(&queue, value, Within(absl::Milliseconds(1)), result);
}

TEST(BoundedQueueTest, PushThatTimesOutLeavesTheValueWithTheCaller) {
  std::string value = "second";
  absl::Status result;
  RunTask(CancelledPushKeepsItsValue(&value, &result));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result)) << result;
  EXPECT_EQ(value, "second");
}

Task<void> DestroyQueueWaiters(BoundedQueue<int>* queue, int* popped) {
  absl::StatusOr<int> never_popped;
  absl::Status never_pushed;
  // A Pop destroyed while it waits, and one destroyed once a value was
  // promised to it but before it ran.
  Task<void> waiting = PopInto(queue, Cancellation(), &never_popped);
  Start(waiting);
  waiting = Task<void>();
  Task<void> promised = PopInto(queue, Cancellation(), &never_popped);
  Start(promised);
  CONET_CO_ASSERT_OK(queue->TryPush(7));
  promised = Task<void>();
  CONET_CO_ASSERT_OK_AND_ASSIGN(*popped, queue->TryPop());  // the value stayed
  // The same for Pushes waiting for room.
  CONET_CO_ASSERT_OK(queue->TryPush(8));
  Task<void> waiting_push = PushValue(queue, 9, Cancellation(), &never_pushed);
  Start(waiting_push);
  waiting_push = Task<void>();
  Task<void> promised_push = PushValue(queue, 10, Cancellation(), &never_pushed);
  Start(promised_push);
  EXPECT_EQ(queue->TryPop().value_or(-1), 8);  // room promised to the push
  promised_push = Task<void>();
  CONET_CO_ASSERT_OK(queue->TryPush(11));  // and given back
  co_await Yield();
}

TEST(BoundedQueueTest, DestroyedWaitersLeaveNoRegistrationAndLoseNothing) {
  BoundedQueue<int> queue(1);
  int popped = 0;
  RunTask(DestroyQueueWaiters(&queue, &popped));
  EXPECT_EQ(popped, 7);
  EXPECT_EQ(queue.TryPop().value_or(-1), 11);
}

Task<void> Produce(BoundedQueue<int>* queue, int count) {
  for (int value = 0; value < count; ++value) {
    CONET_CO_ASSERT_OK(co_await queue->Push(std::move(value)));
  }
  queue->Close();
}

Task<void> Consume(BoundedQueue<int>* queue, std::vector<int>* received) {
  while (true) {
    absl::StatusOr<int> value = co_await queue->Pop();
    if (absl::IsOutOfRange(value.status())) co_return;
    CONET_CO_ASSERT_OK(value);
    received->push_back(*value);
  }
}

TEST(BoundedQueueTest, ProducerOnOneLoopConsumerOnAnother) {
  constexpr int kValues = 20000;
  BoundedQueue<int> queue(8);
  std::vector<int> received;
  ASSERT_TRUE(RunOnTwoLoops(Produce(&queue, kValues), Consume(&queue, &received)));
  ASSERT_EQ(received.size(), size_t{kValues});
  for (int i = 0; i < kValues; ++i) ASSERT_EQ(received[i], i);
}

// Pushes 0..count-1, each retried until it goes in, with deadlines short
// enough to race with the pops on the other loop.
Task<void> ProduceWithDeadlines(BoundedQueue<int>* queue, int count) {
  for (int value = 0; value < count;) {
    const absl::Status pushed =
        co_await queue->Push(std::move(value), Within(absl::Microseconds(20)));
    if (pushed.ok()) {
      ++value;
    } else {
      CONET_CO_ASSERT_OK(absl::IsDeadlineExceeded(pushed) ? absl::OkStatus() : pushed);
    }
  }
  queue->Close();
}

Task<void> ConsumeWithDeadlines(BoundedQueue<int>* queue, std::vector<int>* received) {
  while (true) {
    absl::StatusOr<int> value = co_await queue->Pop(Within(absl::Microseconds(20)));
    if (absl::IsOutOfRange(value.status())) co_return;
    if (absl::IsDeadlineExceeded(value.status())) continue;
    CONET_CO_ASSERT_OK(value);
    received->push_back(*value);
  }
}

Task<void> ConsumeOnManyTasks(BoundedQueue<int>* queue, std::vector<int>* received) {
  TaskGroup group;
  for (int i = 0; i < 4; ++i) group.Spawn(ConsumeWithDeadlines(queue, received));
  CONET_CO_ASSERT_OK(co_await group.Join());
}

TEST(BoundedQueueTest, DeadlinesRacingWithHandoffsAcrossLoopsLoseNoValue) {
  constexpr int kValues = 20000;
  BoundedQueue<int> queue(2);
  std::vector<int> received;
  ASSERT_TRUE(
      RunOnTwoLoops(ProduceWithDeadlines(&queue, kValues), ConsumeOnManyTasks(&queue, &received)));
  std::sort(received.begin(), received.end());
  ASSERT_EQ(received.size(), size_t{kValues});  // none lost, none twice
  for (int i = 0; i < kValues; ++i) ASSERT_EQ(received[i], i);
}

}  // namespace
}  // namespace conet
