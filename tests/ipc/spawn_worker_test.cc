#include "ipc/spawn_worker.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/subprocess.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunfilePath;
using ::conet::test::RunTask;

// Spawns the worker, reads its report, asks for `request`, and returns the
// report and the exit status.
Task<std::string> RunWorker(std::string request, bool kill, WorkerOptions options = {}) {
  absl::StatusOr<Worker> worker =
      SpawnWorker({RunfilePath("tests/ipc/worker_child")}, std::move(options));
  if (!worker.ok()) co_return worker.status().ToString();
  EXPECT_GT(worker->pid(), 0);
  char buffer[4096];
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

// Puts a descriptor that is not close-on-exec at `number`, as a shell's
// `exec 7</secret` before starting a server would.
UniqueFd InheritableAt(int number, const char* path) {
  UniqueFd opened(::open(path, O_RDONLY | O_CLOEXEC));
  EXPECT_TRUE(opened.is_open());
  EXPECT_EQ(::dup2(opened.fd(), number), number);  // dup2 clears close-on-exec
  return UniqueFd(number);
}

TEST(SpawnWorkerTest, TheWorkerHasItsChannelOnFdThreeAndNothingElse) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(RunWorker("7", false)), "fds=0,1,2,3 env= exit=7");
}

TEST(SpawnWorkerTest, DescriptorsTheParentInheritedDoNotReachTheWorker) {
  FdLeakCheck leaks;
  UniqueFd seven = InheritableAt(7, "/dev/null");
  UniqueFd ten = InheritableAt(10, "/dev/null");
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);  // no O_CLOEXEC: inherited by exec
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  UniqueFd far = InheritableAt(251, "/dev/null");
  EXPECT_EQ(RunTask(RunWorker("0", false)), "fds=0,1,2,3 env= exit=0");
}

TEST(SpawnWorkerTest, TheWorkerGetsTheDescriptorsItIsGivenInOrder) {
  FdLeakCheck leaks;
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  // Given in an order that makes a source and a target number collide.
  WorkerOptions options{.fds = {write_end.fd(), null.fd(), read_end.fd()}};
  EXPECT_EQ(RunTask(RunWorker("0", false, std::move(options))), "fds=0,1,2,3,4,5,6 env= exit=0");
}

TEST(SpawnWorkerTest, TheWorkerGetsOnlyTheEnvironmentItIsGiven) {
  FdLeakCheck leaks;
  ::setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);
  // CONET_WORKER_FD is always set for the child (and taken by WorkerChannelFd).
  EXPECT_EQ(RunTask(RunWorker("0", false)), "fds=0,1,2,3 env= exit=0");
  WorkerOptions options{.environment = {"LANG=C.UTF-8", "TZ=UTC"}};
  EXPECT_EQ(RunTask(RunWorker("0", false, std::move(options))), "fds=0,1,2,3 env=LANG,TZ exit=0");
  ::unsetenv("NOTIFY_SOCKET");
}

TEST(SpawnWorkerTest, InheritEnvironmentCopiesTheNamedVariablesThatAreSet) {
  ::setenv("CONET_TEST_A", "a=1", 1);
  ::unsetenv("CONET_TEST_MISSING");
  EXPECT_THAT(InheritEnvironment({"CONET_TEST_A", "CONET_TEST_MISSING"}),
              ::testing::ElementsAre("CONET_TEST_A=a=1"));
  ::unsetenv("CONET_TEST_A");
}

TEST(SpawnWorkerTest, AnEnvironmentEntryWithoutEqualsIsRefused) {
  FdLeakCheck leaks;
  WorkerOptions options{.environment = {"JUSTANAME"}};
  EXPECT_THAT(RunTask(RunWorker("0", false, std::move(options))),
              ::testing::HasSubstr("JUSTANAME"));
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
            absl::StrCat("fds=0,1,2,3 env= exit=", 128 + SIGTERM));
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

Task<absl::Status> SpawnMissing() { co_return SpawnWorker({"/nonexistent/worker"}).status(); }

TEST(SpawnWorkerTest, AMissingProgramIsAnError) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(SpawnMissing());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), ::testing::HasSubstr("/nonexistent/worker"));
}

TEST(SpawnWorkerTest, TheWorkerStartsWithItsLimitsNoNewPrivsAndParentDeathSignal) {
  FdLeakCheck leaks;
  WorkerOptions options;
  options.environment = {"CONET_TEST_REPORT_PRIVS=1"};
  options.limits = {{RLIMIT_NOFILE, 64}, {RLIMIT_CORE, 0}};
  options.no_new_privs = true;
  options.parent_death_signal = SIGKILL;
  EXPECT_EQ(RunTask(RunWorker("0", false, std::move(options))),
            "fds=0,1,2,3 env=CONET_TEST_REPORT_PRIVS nnp=1 pdeath=9 nofile=64/64 core=0/0 exit=0");
}

TEST(SpawnWorkerTest, WithoutOptionsTheWorkerKeepsThePrivilegeDefaults) {
  FdLeakCheck leaks;
  WorkerOptions options;
  options.environment = {"CONET_TEST_REPORT_PRIVS=1"};
  EXPECT_THAT(RunTask(RunWorker("0", false, std::move(options))),
              ::testing::HasSubstr(" nnp=0 pdeath=0 "));
}

TEST(SpawnWorkerTest, ALimitTheKernelRefusesIsAnErrorBeforeTheWorkerRuns) {
  FdLeakCheck leaks;
  WorkerOptions options;
  rlimit files{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_max == RLIM_INFINITY || ::geteuid() == 0) {
    // Root may raise a hard limit, but not past the kernel's nr_open.
    options.limits = {{RLIMIT_NOFILE, RLIM_INFINITY}};
  } else {
    options.limits = {{RLIMIT_NOFILE, files.rlim_max + 1}};
  }
  EXPECT_THAT(RunTask(RunWorker("0", false, std::move(options))),
              ::testing::HasSubstr(": setrlimit: "));
}

TEST(SpawnWorkerTest, TheWorkerGetsItsSignalWhenTheSpawningProcessEnds) {
  // The worker, orphaned, is reparented to this process, which can then
  // see how it ended.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
  int pid_pipe[2];
  ASSERT_EQ(::pipe2(pid_pipe, O_CLOEXEC), 0);
  const pid_t middle = ::fork();
  if (middle == 0) {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    WorkerOptions options;
    options.parent_death_signal = SIGKILL;
    absl::StatusOr<Worker> worker =
        SpawnWorker({RunfilePath("tests/ipc/worker_child")}, std::move(options),
                    loop.ok() ? loop->get() : nullptr);
    const pid_t pid = worker.ok() ? worker->pid() : -1;
    [[maybe_unused]] const ssize_t n = ::write(pid_pipe[1], &pid, sizeof pid);
    ::_exit(0);  // without the Worker's destructor, which would kill it
  }
  ::close(pid_pipe[1]);
  pid_t worker = -1;
  ASSERT_EQ(::read(pid_pipe[0], &worker, sizeof worker), static_cast<ssize_t>(sizeof worker));
  ::close(pid_pipe[0]);
  ASSERT_GT(worker, 0);
  ASSERT_EQ(::waitpid(middle, nullptr, 0), middle);
  // Without the signal it would notice its closed channel and exit 101 or 102.
  int status = 0;
  ASSERT_EQ(::waitpid(worker, &status, 0), worker);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0), 0);
}

TEST(SpawnWorkerTest, WorkerChannelFdOutsideAWorkerIsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(WorkerChannelFd().status()));
}

}  // namespace
}  // namespace conet::ipc
