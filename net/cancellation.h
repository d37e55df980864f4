// File: net/cancellation.h
//
// Cancellation says how a pending operation may end early: when its stop
// token is stopped it completes with absl::CancelledError, and when its
// deadline passes with absl::DeadlineExceededError. Every conet awaitable
// takes one as its last argument; it converts from either part.
//
//   std::stop_source stop;
//   auto n = co_await stream.ReadSome(buffer, stop.get_token());
//   auto m = co_await stream.ReadSome(buffer, conet::Within(absl::Seconds(2)));
//   conet::Cancellation both(stop.get_token(), deadline);
//   auto k = co_await stream.ReadSome(buffer, both);
//
// Operations also obey the stop token of the Task that awaits them (see
// net/task.h), so WithTimeout and WhenAny reach them without any argument.
//
// (A class rather than an aggregate on purpose: GCC 12 destroys an aggregate
// temporary twice when it is an argument inside a co_await expression.)
#ifndef CONET_NET_CANCELLATION_H_
#define CONET_NET_CANCELLATION_H_

#include <cstdint>
#include <limits>
#include <stop_token>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace conet {

class Cancellation {
 public:
  // Never ends early.
  Cancellation() = default;
  // Ends early when `token` is stopped.
  Cancellation(std::stop_token token) : token_(std::move(token)) {}  // NOLINT
  // Ends early when `deadline` passes.
  Cancellation(absl::Time deadline) : deadline_ns_(ToNanos(deadline)) {}  // NOLINT
  // Ends early at whichever comes first.
  Cancellation(std::stop_token token, absl::Time deadline)
      : token_(std::move(token)), deadline_ns_(ToNanos(deadline)) {}

  const std::stop_token& token() const { return token_; }
  absl::Time deadline() const {
    return has_deadline() ? absl::FromUnixNanos(deadline_ns_) : absl::InfiniteFuture();
  }
  bool has_deadline() const { return deadline_ns_ != kNoDeadline; }

 private:
  // The deadline is kept as Unix nanoseconds: 8 bytes rather than
  // absl::Time's 16, in every awaiter (and every frame that holds one).
  static constexpr int64_t kNoDeadline = std::numeric_limits<int64_t>::max();
  static int64_t ToNanos(absl::Time deadline) {
    // Past the year 2262 the conversion saturates: as good as no deadline.
    return deadline == absl::InfiniteFuture() ? kNoDeadline : absl::ToUnixNanos(deadline);
  }

  std::stop_token token_;
  int64_t deadline_ns_ = kNoDeadline;
};

// The Cancellation that never ends anything early. Calls that return an
// awaiter (ReadSome, Sleep, ...) take their Cancellation by reference with
// this as the default: a defaulted temporary would live in the frame of
// every coroutine that awaits the call. (Calls that return a Task take it by
// value: the task may outlive the caller's expression.)
inline constinit const Cancellation kNoCancellation;

// Returns a Cancellation whose deadline is `timeout` from now.
inline Cancellation Within(absl::Duration timeout) { return Cancellation(absl::Now() + timeout); }

}  // namespace conet

#endif  // CONET_NET_CANCELLATION_H_
