// examples/hello: the conet runtime in one screen.
//
// Starts a few concurrent "workers" that sleep for different times, races a
// slow task against a timeout, and cancels a group of sleepers, printing what
// happens in order. Usage: hello [--workers=N] (default 3, at most 100).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "net/event_loop.h"
#include "net/task.h"
#include "net/task_group.h"
#include "net/timeout.h"
#include "net/timer.h"
#include "net/when_all.h"

namespace {

conet::Task<int> Worker(int id) {
  co_await conet::Sleep(absl::Milliseconds(10 * id));
  std::printf("worker %d done after %d ms\n", id, 10 * id);
  const int square = id * id;  // (`co_return id * id` trips clang-format 14)
  co_return square;
}

conet::Task<absl::StatusOr<std::string>> SlowAnswer() {
  if (absl::Status slept = co_await conet::Sleep(absl::Seconds(5)); !slept.ok()) {
    co_return slept;  // cancelled by the timeout below
  }
  co_return std::string("too late");
}

conet::Task<absl::Status> SleepUntilCancelled(int id) {
  absl::Status slept = co_await conet::Sleep(absl::Hours(1));
  std::printf("sleeper %d woke: %s\n", id, slept.ToString().c_str());
  co_return absl::OkStatus();
}

conet::Task<int> Main(int workers) {
  // 1. Concurrency: all workers run at once; WhenAll collects their results.
  std::vector<conet::Task<int>> tasks;
  for (int id = 1; id <= workers; ++id) tasks.push_back(Worker(id));
  const absl::Time start = absl::Now();
  std::vector<int> squares = co_await conet::WhenAll(std::move(tasks));
  int sum = 0;
  for (int square : squares) sum += square;
  std::printf("sum of squares %d in %lld ms (concurrently)\n", sum,
              static_cast<long long>(absl::ToInt64Milliseconds(absl::Now() - start)));

  // 2. Deadlines: the slow task is cancelled when the limit passes.
  absl::StatusOr<std::string> answer =
      co_await conet::WithTimeout(SlowAnswer(), absl::Milliseconds(20));
  std::printf("slow answer: %s\n", answer.status().ToString().c_str());

  // 3. Structured cancellation: stopping the group wakes every child.
  conet::TaskGroup group;
  for (int id = 1; id <= 2; ++id) group.Spawn(SleepUntilCancelled(id));
  co_await conet::Sleep(absl::Milliseconds(1));
  group.RequestStop();
  absl::Status joined = co_await group.Join();
  std::printf("group joined: %s\n", joined.ToString().c_str());
  co_return 0;
}

void PrintUsage() {
  std::printf(
      "usage: hello [--workers=N]\n"
      "Shows the conet runtime: concurrent tasks, a timeout, cancellation.\n"
      "  --workers=N  concurrent workers, 1 to 100 (default 3)\n");
}

}  // namespace

int main(int argc, char** argv) {
  int workers = 3;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (std::strcmp(arg, "--help") == 0) {
      PrintUsage();
      return 0;
    }
    if (std::strncmp(arg, "--workers=", 10) == 0 && absl::SimpleAtoi(arg + 10, &workers) &&
        workers >= 1 && workers <= 100) {
      continue;
    }
    std::fprintf(stderr, "hello: bad argument \"%s\" (try --help)\n", arg);
    return 2;
  }
  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) {
    std::fprintf(stderr, "hello: %s\n", loop.status().ToString().c_str());
    return 1;
  }
  return (*loop)->BlockOn(Main(workers));
}
