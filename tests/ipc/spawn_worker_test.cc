#include "ipc/spawn_worker.h"

#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/subprocess.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::testing::FdLeakCheck;
using ::conet::testing::RunfilePath;
using ::conet::testing::RunTask;

// Spawns the worker, reads its report, asks for `request`, and returns the
// report and the exit status.
Task<std::string> RunWorker(std::string request, bool kill) {
  absl::StatusOr<Worker> worker = SpawnWorker({RunfilePath("tests/ipc/worker_child")});
  if (!worker.ok()) co_return worker.status().ToString();
  EXPECT_GT(worker->pid(), 0);
  char buffer[256];
  absl::StatusOr<ReceivedMessage> report =
      co_await worker->channel().Receive(buffer, Within(absl::Seconds(10)));
  if (!report.ok()) co_return report.status().ToString();
  co_await worker->channel().Send(request);
  if (kill) {
    EXPECT_TRUE(worker->Kill(SIGTERM).ok());
  }
  absl::StatusOr<int> status = co_await worker->Wait(Within(absl::Seconds(10)));
  if (!status.ok()) co_return status.status().ToString();
  co_return absl::StrCat(std::string(buffer, report->size), " exit=", *status);
}

TEST(SpawnWorkerTest, TheWorkerHasItsChannelOnFdThreeAndNothingElse) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(RunWorker("7", false)), "fds=0,1,2,3 env=unset exit=7");
}

TEST(SpawnWorkerTest, KillEndsTheWorkerAndWaitReportsTheSignal) {
  FdLeakCheck leaks;
  // A server blocks its stop signals (for sigwait or a signalfd); its
  // worker must not inherit that, or SIGTERM would never reach it.
  sigset_t stop, old;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, &old);
  EXPECT_EQ(RunTask(RunWorker("wait", true)),
            absl::StrCat("fds=0,1,2,3 env=unset exit=", 128 + SIGTERM));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Task<absl::Status> SpawnMissing() {
  co_return SpawnWorker({"/nonexistent/worker"}).status();
}

TEST(SpawnWorkerTest, AMissingProgramIsAnError) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(SpawnMissing());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::HasSubstr("/nonexistent/worker"));
}

TEST(SpawnWorkerTest, WorkerChannelFdOutsideAWorkerIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(WorkerChannelFd().status()));
}

}  // namespace
}  // namespace conet::ipc
