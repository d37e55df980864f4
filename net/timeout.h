// File: net/timeout.h
//
// WithTimeout / WithDeadline run a task under a time limit. When the limit
// passes, the task's stop token is stopped: every conet operation inside it
// completes with CancelledError, and the task's error result is reported as
// absl::DeadlineExceededError. The task's result type must be absl::Status
// or absl::StatusOr<U> (so that a deadline can be reported in it).
//
//   absl::StatusOr<size_t> n = co_await conet::WithTimeout(
//       ReadRequest(stream), absl::Seconds(5));
//
// The wrapper also obeys its own awaiter's stop token.
#ifndef CONET_NET_TIMEOUT_H_
#define CONET_NET_TIMEOUT_H_

#include <optional>
#include <stop_token>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "net/task.h"
#include "net/timer.h"
#include "net/when_any.h"

namespace conet {

namespace internal {
template <typename T>
struct IsStatusLike : std::false_type {};
template <>
struct IsStatusLike<absl::Status> : std::true_type {};
template <typename U>
struct IsStatusLike<absl::StatusOr<U>> : std::true_type {};

// Sleeps until `deadline`; the losing side of WithDeadline's race.
inline Task<absl::Status> DeadlineTimer(absl::Time deadline) {
  absl::Status slept = co_await SleepUntil(deadline);
  if (slept.ok()) co_return absl::DeadlineExceededError("deadline exceeded");
  co_return slept;
}
}  // namespace internal

// Runs `task` until it completes or `deadline` passes.
template <typename T>
requires internal::IsStatusLike<T>::value Task<T> WithDeadline(Task<T> task, absl::Time deadline) {
  auto [index, result] = co_await WhenAny(std::move(task), internal::DeadlineTimer(deadline));
  if (index == 0) co_return std::get<0>(std::move(result));
  absl::Status timer = std::get<1>(std::move(result));
  if (timer.code() == absl::StatusCode::kDeadlineExceeded) {
    co_return absl::DeadlineExceededError(
        absl::StrCat("deadline exceeded at ", absl::FormatTime(deadline)));
  }
  co_return timer;  // the whole thing was cancelled from outside
}

// Runs `task` until it completes or `timeout` has passed.
template <typename T>
requires internal::IsStatusLike<T>::value Task<T> WithTimeout(Task<T> task,
                                                              absl::Duration timeout) {
  return WithDeadline(std::move(task), absl::Now() + timeout);
}

}  // namespace conet

#endif  // CONET_NET_TIMEOUT_H_
