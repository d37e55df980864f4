// File: tests/util/test_util.h
//
// Shared helpers for conet's tests: a descriptor-leak check, a one-line
// way to run a task on a fresh loop, and what attacks by another local
// user need (a shared sticky directory, running code as nobody).
#ifndef CONET_TESTS_UTIL_TEST_UTIL_H_
#define CONET_TESTS_UTIL_TEST_UTIL_H_

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "net/event_loop.h"
#include "net/task.h"
#include "net/timer.h"
#include "net/unique_fd.h"

namespace conet::testing {

// Returns the descriptors open in this process (from /proc/self/fd).
std::set<int> OpenFds();

// Returns `count` descriptors: the read end of a new pipe (its write end
// closed) and dups of it, each close-on-exec.
std::vector<UniqueFd> PipeReadEnds(size_t count);

// Returns the raw numbers of `fds`, still theirs.
std::vector<int> RawFds(const std::vector<UniqueFd>& fds);

// Records the open descriptors on construction and, on destruction, fails
// the current test if any descriptor was opened and not closed (or closed
// and not reopened).
class FdLeakCheck {
 public:
  FdLeakCheck() : before_(OpenFds()) {}
  ~FdLeakCheck() { EXPECT_EQ(OpenFds(), before_) << "descriptors leaked"; }

 private:
  std::set<int> before_;
};

// Counts live instances, so a test can see a coroutine frame being destroyed.
struct Tracked {
  explicit Tracked(int* counter) : live(counter) { ++*live; }
  ~Tracked() { --*live; }
  int* live;
};

// Sleeps for `delay`, then appends `id` to `order`.
inline Task<void> SleepThenRecord(absl::Duration delay, int id, std::vector<int>* order) {
  co_await Sleep(delay);
  order->push_back(id);
}

// Runs `task` to completion on a new loop (destroyed afterwards).
template <typename T>
T RunTask(Task<T> task) {
  auto loop = EventLoop::Create();
  if (!loop.ok()) {
    ADD_FAILURE() << loop.status();
    std::abort();
  }
  return (*loop)->BlockOn(std::move(task));
}

// A fresh world-writable, sticky directory under /tmp (like /tmp itself,
// where other users may plant files), removed with its contents.
class SharedTempDir {
 public:
  SharedTempDir();
  ~SharedTempDir();
  SharedTempDir(const SharedTempDir&) = delete;
  SharedTempDir& operator=(const SharedTempDir&) = delete;
  // Returns the path of `name` inside the directory.
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs `action` in a forked child as the unprivileged user nobody, as
// another local user would act; returns 0 if it returned true, 1 if false,
// 2 if the child could not become nobody (the caller must be root).
int AsNobody(const std::function<bool()>& action);

}  // namespace conet::testing

#endif  // CONET_TESTS_UTIL_TEST_UTIL_H_
