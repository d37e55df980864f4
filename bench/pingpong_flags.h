// File: bench/pingpong_flags.h
//
// The command line shared by the C++ ping-pong programs (pingpong_conet,
// pingpong_asio): --round-trips=N (default 100000) and
// --transport=socketpair|tcp (see bench/stream_pair.h).
#ifndef CONET_BENCH_PINGPONG_FLAGS_H_
#define CONET_BENCH_PINGPONG_FLAGS_H_

#include <string>

namespace conet::bench {

struct PingPongFlags {
  long round_trips;
  std::string transport;
};

// Parses the flags; prints the usage and exits 2 on a bad argument or
// --help.
PingPongFlags ParsePingPongFlags(int argc, char** argv);

}  // namespace conet::bench

#endif  // CONET_BENCH_PINGPONG_FLAGS_H_
