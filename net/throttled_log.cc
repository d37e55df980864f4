#include "net/throttled_log.h"

#include <cstdio>

#include "absl/time/clock.h"

namespace conet {

void ThrottledLog::Report(const absl::Status& error) {
  const absl::Time now = absl::Now();
  if (now - last_ < absl::Seconds(1)) {
    ++suppressed_;
    return;
  }
  std::fprintf(stderr, "%s: %s", program_.c_str(), std::string(error.message()).c_str());
  if (suppressed_ > 0) std::fprintf(stderr, " (and %d more)", suppressed_);
  std::fprintf(stderr, "\n");
  last_ = now;
  suppressed_ = 0;
}

}  // namespace conet
