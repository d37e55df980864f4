// File: net/throttled_log.h
//
// ThrottledLog prints errors to stderr at most once a second, counting the
// ones it held back: a server out of descriptors, or one refusing a flood of
// peers, would otherwise fill its log as fast as it can loop.
//
//   conet::ThrottledLog errors("echo_server");
//   errors.Report(status);  // "echo_server: accept on ...: ... (and 41 more)"
#ifndef CONET_NET_THROTTLED_LOG_H_
#define CONET_NET_THROTTLED_LOG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace conet {

class ThrottledLog {
 public:
  // Prefixes each line with "<program>: ".
  explicit ThrottledLog(std::string program) : program_(std::move(program)) {}

  // Prints `error`'s message, unless a line was printed less than a second
  // ago; then counts it for the next line.
  void Report(const absl::Status& error);

 private:
  std::string program_;
  absl::Time last_ = absl::InfinitePast();
  int suppressed_ = 0;
};

}  // namespace conet

#endif  // CONET_NET_THROTTLED_LOG_H_
