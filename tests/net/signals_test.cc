// Tests for SignalWatcher, WaitForStopSignal and ServeUntilStopSignal
// (net/signals.h). Signals are raised at this thread only (raise, tgkill):
// a process-directed one could reach a thread that does not block it (a
// sanitizer's) and end the test.
#include "net/signals.h"

#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <initializer_list>
#include <stop_token>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/timeout.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

sigset_t SetOf(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int signal : signals) sigaddset(&set, signal);
  return set;
}

// Raises `signal` at this thread.
absl::Status Raise(int signal) {
  if (raise(signal) != 0) return absl::ErrnoToStatus(errno, "raise");
  return absl::OkStatus();
}

// Blocks SIGUSR1, SIGUSR2 and the stop signals in this thread for the test;
// afterwards takes whatever is still pending and restores the mask.
class SignalsTest : public ::testing::Test {
 protected:
  void SetUp() override { pthread_sigmask(SIG_BLOCK, &blocked_, &saved_); }
  void TearDown() override {
    const timespec now{};
    while (sigtimedwait(&blocked_, nullptr, &now) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }

 private:
  const sigset_t blocked_ = SetOf({SIGUSR1, SIGUSR2, SIGINT, SIGTERM});
  sigset_t saved_;
};

// Creates a watcher for `signals` on the current loop and takes one signal.
Task<absl::StatusOr<int>> NextOf(sigset_t signals, Cancellation cancel = {}) {
  absl::StatusOr<SignalWatcher> watcher = SignalWatcher::Create(signals);
  if (!watcher.ok()) co_return watcher.status();
  co_return co_await watcher->Next(cancel);
}

Task<absl::StatusOr<int>> NextOn(SignalWatcher* watcher, Cancellation cancel = {}) {
  co_return co_await watcher->Next(cancel);
}

// Raises `signal` and expects the watcher to read it.
Task<void> RaiseAndRead(SignalWatcher* watcher, int signal) {
  CONET_CO_ASSERT_OK(Raise(signal));
  CONET_CO_ASSERT_OK_AND_ASSIGN(int read, co_await watcher->Next());
  EXPECT_EQ(read, signal);
}

Task<void> RaiseThenNext() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SignalWatcher watcher, SignalWatcher::Create(SetOf({SIGUSR1})));
  co_await RaiseAndRead(&watcher, SIGUSR1);
}

TEST_F(SignalsTest, YieldsASignalRaisedBefore) {
  FdLeakCheck leaks;
  RunTask(RaiseThenNext());
}

// Sends `signal` to thread `tid` from another thread, once the caller has
// had a pass of the loop to start waiting.
Task<void> SendFromAnotherThread(pid_t tid, int signal) {
  co_await Yield();
  std::thread sender([tid, signal] { ::syscall(SYS_tgkill, ::getpid(), tid, signal); });
  sender.join();
}

Task<void> WaitThenGetSignal() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SignalWatcher watcher, SignalWatcher::Create(SetOf({SIGUSR1})));
  auto [signal, sent] = co_await WhenAll(NextOn(&watcher, Within(absl::Seconds(10))),
                                         SendFromAnotherThread(gettid(), SIGUSR1));
  CONET_CO_ASSERT_OK(signal);
  EXPECT_EQ(*signal, SIGUSR1);
}

TEST_F(SignalsTest, WakesWhenASignalComesWhileItWaits) {
  FdLeakCheck leaks;
  RunTask(WaitThenGetSignal());
}

Task<void> SeveralInARow() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SignalWatcher watcher,
                                SignalWatcher::Create(SetOf({SIGUSR1, SIGUSR2})));
  // Two pending at once: the lower number first.
  CONET_CO_ASSERT_OK(Raise(SIGUSR2));
  CONET_CO_ASSERT_OK(Raise(SIGUSR1));
  CONET_CO_ASSERT_OK_AND_ASSIGN(int first, co_await watcher.Next());
  CONET_CO_ASSERT_OK_AND_ASSIGN(int second, co_await watcher.Next());
  EXPECT_EQ(first, SIGUSR1);
  EXPECT_EQ(second, SIGUSR2);
  // And the same one again, once taken.
  for (int round = 0; round < 3; ++round) co_await RaiseAndRead(&watcher, SIGUSR2);
}

TEST_F(SignalsTest, YieldsSignalsOneAfterAnother) {
  FdLeakCheck leaks;
  RunTask(SeveralInARow());
}

Task<void> CancelledWaits() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SignalWatcher watcher, SignalWatcher::Create(SetOf({SIGUSR1})));
  absl::StatusOr<int> late = co_await watcher.Next(Within(absl::Milliseconds(2)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(late.status())) << late.status();
  std::stop_source stop;
  stop.request_stop();
  absl::StatusOr<int> stopped = co_await watcher.Next(stop.get_token());
  EXPECT_TRUE(absl::IsCancelled(stopped.status())) << stopped.status();
  // Through the task's stop token, as WithTimeout stops it.
  absl::StatusOr<int> timed_out = co_await WithTimeout(NextOn(&watcher), absl::Milliseconds(2));
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out.status())) << timed_out.status();
  // The watcher still works, and the cancelled waits took nothing.
  co_await RaiseAndRead(&watcher, SIGUSR1);
}

TEST_F(SignalsTest, ANextCanBeCancelled) {
  FdLeakCheck leaks;
  RunTask(CancelledWaits());
}

Task<void> CloseAfterAPass(SignalWatcher* watcher) {
  co_await Yield();
  watcher->Close();
}

Task<void> ClosedWhileWaiting() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SignalWatcher watcher, SignalWatcher::Create(SetOf({SIGUSR1})));
  auto [signal, closed] =
      co_await WhenAll(NextOn(&watcher, Within(absl::Seconds(10))), CloseAfterAPass(&watcher));
  EXPECT_TRUE(absl::IsCancelled(signal.status())) << signal.status();
  EXPECT_FALSE(watcher.is_open());
}

TEST_F(SignalsTest, ClosingTheWatcherEndsAPendingNext) {
  FdLeakCheck leaks;
  RunTask(ClosedWhileWaiting());
}

bool Pending(int signal) {
  sigset_t pending;
  sigpending(&pending);
  return sigismember(&pending, signal) == 1;
}

Task<void> OnlyItsOwnSignals() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(SignalWatcher watcher, SignalWatcher::Create(SetOf({SIGUSR1})));
  CONET_CO_ASSERT_OK(Raise(SIGUSR2));
  absl::StatusOr<int> other = co_await watcher.Next(Within(absl::Milliseconds(20)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(other.status())) << other.status();
  EXPECT_TRUE(Pending(SIGUSR2)) << "the watcher took a signal outside its set";
  co_await RaiseAndRead(&watcher, SIGUSR1);
}

TEST_F(SignalsTest, ASignalOutsideTheSetIsNotReported) {
  FdLeakCheck leaks;
  RunTask(OnlyItsOwnSignals());
}

TEST_F(SignalsTest, CreateRefusesWhatCouldNeverBeRead) {
  FdLeakCheck leaks;
  absl::StatusOr<int> empty = RunTask(NextOf(SetOf({})));
  EXPECT_TRUE(absl::IsInvalidArgument(empty.status())) << empty.status();
  // SIGHUP is not blocked here: it would be delivered, never read.
  absl::StatusOr<int> unblocked = RunTask(NextOf(SetOf({SIGUSR1, SIGHUP})));
  EXPECT_TRUE(absl::IsFailedPrecondition(unblocked.status())) << unblocked.status();
  EXPECT_EQ(unblocked.status().message(),
            "SignalWatcher: signal 1 (SIGHUP) is not blocked in this thread: it would be "
            "delivered, not read");
  absl::StatusOr<SignalWatcher> no_loop = SignalWatcher::Create(SetOf({SIGUSR1}));
  EXPECT_TRUE(absl::IsFailedPrecondition(no_loop.status())) << no_loop.status();
  EXPECT_EQ(no_loop.status().message(), "SignalWatcher: no EventLoop is running on this thread");
}

Task<void> RaiseStopThenWait() {
  CONET_CO_ASSERT_OK(Raise(SIGTERM));
  CONET_CO_ASSERT_OK(co_await WaitForStopSignal());
}

TEST_F(SignalsTest, WaitForStopSignalReturnsOnSigterm) {
  FdLeakCheck leaks;
  RunTask(RaiseStopThenWait());
}

TEST_F(SignalsTest, BlockUntilSignalReturnsTheSignalsNumber) {
  FdLeakCheck leaks;
  const pid_t me = gettid();
  std::thread sender([me] { ::syscall(SYS_tgkill, ::getpid(), me, SIGUSR2); });
  EXPECT_EQ(BlockUntilSignal(SetOf({SIGUSR1, SIGUSR2})), SIGUSR2);
  sender.join();
  EXPECT_FALSE(Pending(SIGUSR2)) << "the signal was not taken";
}

TEST_F(SignalsTest, ServeUntilStopSignalStopsTheGroupOnASignal) {
  FdLeakCheck leaks;
  absl::StatusOr<std::unique_ptr<LoopGroup>> group = LoopGroup::Create(2);
  ASSERT_TRUE(group.ok()) << group.status();
  const pid_t me = gettid();
  std::thread sender([me] { ::syscall(SYS_tgkill, ::getpid(), me, SIGUSR1); });
  testing::internal::CaptureStdout();
  ServeUntilStopSignal(**group, "127.0.0.1:7", SetOf({SIGUSR1}));
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "listening on 127.0.0.1:7\n");
  sender.join();
  EXPECT_FALSE(Pending(SIGUSR1)) << "the signal was not taken";
}

}  // namespace
}  // namespace conet
