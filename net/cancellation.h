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
  Cancellation(absl::Time deadline) : deadline_(deadline) {}  // NOLINT
  // Ends early at whichever comes first.
  Cancellation(std::stop_token token, absl::Time deadline)
      : token_(std::move(token)), deadline_(deadline) {}

  const std::stop_token& token() const { return token_; }
  absl::Time deadline() const { return deadline_; }
  bool has_deadline() const { return deadline_ != absl::InfiniteFuture(); }

 private:
  std::stop_token token_;
  absl::Time deadline_ = absl::InfiniteFuture();
};

// Returns a Cancellation whose deadline is `timeout` from now.
inline Cancellation Within(absl::Duration timeout) {
  return Cancellation(absl::Now() + timeout);
}

}  // namespace conet

#endif  // CONET_NET_CANCELLATION_H_
