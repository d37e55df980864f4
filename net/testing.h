// File: net/testing.h
//
// Test helpers for code built on conet, the ones conet's own tests use:
// run a task on a fresh loop, check that no descriptor leaked, and assert
// on statuses inside coroutines, where GoogleTest's ASSERT_* cannot be
// used (they `return`, and a coroutine must `co_return`).
//
//   conet::Task<void> RoundTrip() {
//     CONET_CO_ASSERT_OK_AND_ASSIGN(conet::StreamListener listener,
//                                   conet::StreamListener::Bind(address));
//     CONET_CO_ASSERT_OK(co_await stream.WriteAll("ping"));
//     ...
//   }
//
//   TEST(MyServer, Echoes) {
//     conet::test::FdLeakCheck leaks;
//     conet::test::RunTask(RoundTrip());
//   }
//
// The CO_ macros are for coroutines returning Task<void>: on an error they
// fail the test (non-fatally, with the expression and the status) and
// `co_return`. CONET_EXPECT_OK and CONET_ASSERT_OK are the plain-function
// forms. Link //net:testing (testonly) together with GoogleTest.
#ifndef CONET_NET_TESTING_H_
#define CONET_NET_TESTING_H_

#include <cstdlib>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "net/event_loop.h"
#include "net/task.h"

namespace conet::test {

// Runs `task` to completion on a new loop (destroyed afterwards) and
// returns its value; a loop that cannot be created fails the test and
// aborts.
template <typename T>
T RunTask(Task<T> task);

// Returns the descriptors open in this process (from /proc/self/fd).
std::set<int> OpenFds();

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

// Returns the status of a Status or a StatusOr (for the macros).
inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

}  // namespace conet::test

// Expects `expr` (a Status or a StatusOr) to be OK.
#define CONET_EXPECT_OK(expr) \
  EXPECT_TRUE(::conet::test::StatusOf(expr).ok()) << #expr ": " << ::conet::test::StatusOf(expr)

// Asserts `expr` is OK (in a plain function: returns on failure).
#define CONET_ASSERT_OK(expr)                                                     \
  do {                                                                            \
    const ::absl::Status conet_assert_status_ = ::conet::test::StatusOf(expr);    \
    ASSERT_TRUE(conet_assert_status_.ok()) << #expr ": " << conet_assert_status_; \
  } while (false)

// In a Task<void> coroutine: fails the test and co_returns unless `expr`
// (a Status or a StatusOr; it may contain co_await) is OK.
#define CONET_CO_ASSERT_OK(expr)                                           \
  do {                                                                     \
    const ::absl::Status conet_co_status_ = ::conet::test::StatusOf(expr); \
    if (!conet_co_status_.ok()) {                                          \
      ADD_FAILURE() << #expr ": " << conet_co_status_;                     \
      co_return;                                                           \
    }                                                                      \
  } while (false)

// In a Task<void> coroutine: evaluates `expr` (a StatusOr; it may contain
// co_await); if OK, moves its value into `lhs` (a declaration or an
// lvalue), else fails the test and co_returns.
#define CONET_CO_ASSERT_OK_AND_ASSIGN(lhs, expr) \
  CONET_CO_ASSERT_OK_AND_ASSIGN_IMPL_(CONET_TESTING_CONCAT_(conet_statusor_, __LINE__), lhs, expr)

// Implementation details follow.

#define CONET_TESTING_CONCAT_INNER_(a, b) a##b
#define CONET_TESTING_CONCAT_(a, b) CONET_TESTING_CONCAT_INNER_(a, b)
#define CONET_CO_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                        \
  if (!statusor.ok()) {                                          \
    ADD_FAILURE() << #expr ": " << statusor.status();            \
    co_return;                                                   \
  }                                                              \
  lhs = std::move(*statusor)

namespace conet::test {

template <typename T>
T RunTask(Task<T> task) {
  auto loop = EventLoop::Create();
  if (!loop.ok()) {
    ADD_FAILURE() << loop.status();
    std::abort();
  }
  return (*loop)->BlockOn(std::move(task));
}

}  // namespace conet::test

#endif  // CONET_NET_TESTING_H_
