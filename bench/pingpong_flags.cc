#include "bench/pingpong_flags.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/status/status.h"
#include "tools/internal/command_line.h"

namespace conet::bench {

PingPongFlags ParsePingPongFlags(int argc, char** argv) {
  tools::CommandLine args(argc, argv);
  PingPongFlags flags;
  flags.round_trips =
      static_cast<long>(args.Int("round-trips", 100000, 0, std::numeric_limits<long>::max()));
  flags.transport = args.String("transport", "socketpair");
  if (absl::Status ok = args.Finish(); !ok.ok() || args.help()) {
    std::fprintf(stderr, "usage: %s [--round-trips=N] [--transport=socketpair|tcp]%s%s\n", argv[0],
                 ok.ok() ? "" : ": ", std::string(ok.message()).c_str());
    std::exit(2);
  }
  return flags;
}

}  // namespace conet::bench
