// File: tests/util/test_util.h
//
// Helpers for conet's own tests, beside the public ones in net/testing.h
// (RunTask, FdLeakCheck, the CONET_CO_ASSERT_* macros): descriptors to pass
// around, frame and order tracking, and what attacks by another local user
// need (a shared sticky directory, running code as nobody).
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
#include "net/testing.h"
#include "net/timer.h"
#include "net/unique_fd.h"

namespace conet::test {

// Returns `count` descriptors: the read end of a new pipe (its write end
// closed) and dups of it, each close-on-exec.
std::vector<UniqueFd> PipeReadEnds(size_t count);

// Returns the raw numbers of `fds`, still theirs.
std::vector<int> RawFds(const std::vector<UniqueFd>& fds);

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

}  // namespace conet::test

#endif  // CONET_TESTS_UTIL_TEST_UTIL_H_
