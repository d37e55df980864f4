#include "bench/pingpong_flags.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/flags.h"

ABSL_FLAG(int64_t, round_trips, 100000, "round trips to make");
ABSL_FLAG(std::string, transport, "socketpair", "socketpair or tcp");

namespace conet::bench {

PingPongFlags ParsePingPongFlags(int argc, char** argv) {
  absl::StatusOr<tools::ParsedArgs> args = tools::ParseFlags(
      argc, argv, {.ranges = {{"round_trips", 0, std::numeric_limits<long>::max()}}});
  const absl::Status ok = args.status();
  if (!ok.ok() || args->help) {
    std::fprintf(stderr, "usage: %s [--round-trips=N] [--transport=socketpair|tcp]%s%s\n", argv[0],
                 ok.ok() ? "" : ": ", std::string(ok.message()).c_str());
    std::exit(2);
  }
  PingPongFlags flags;
  flags.round_trips = static_cast<long>(absl::GetFlag(FLAGS_round_trips));
  flags.transport = absl::GetFlag(FLAGS_transport);
  return flags;
}

}  // namespace conet::bench
