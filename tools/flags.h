// File: tools/flags.h
//
// The command-line conventions of conet's programs, on Abseil flags. Flags
// are defined with ABSL_FLAG as usual; ParseFlags reads them:
//   - `--name=VALUE`, or `--name` alone for a bool flag; a dash in a name
//     stands for the underscore of its definition (`--allow-uid` sets the
//     flag defined as allow_uid);
//   - `-h` or `--help` asks for the usage (the program prints it, exits 0);
//   - a list flag (std::vector<std::string>) given again adds to the list,
//     as commas do (`--allow-uid=1 --allow-uid=2` is `--allow-uid=1,2`);
//     any other flag given again takes the last value; a list flag given
//     an empty value is an error (it is not a way to empty the list);
//   - `--` ends the flags; what follows, and any argument not starting with
//     `--`, is positional;
//   - an unknown flag, a bad value or an unwanted positional argument is an
//     error naming it, which the program reports with exit status 2.
// (absl::ParseCommandLine exits on its own, with status 1, for --help and
// for a bad flag: not what these programs promise.)
//
//   ABSL_FLAG(std::string, listen, "127.0.0.1:7007", "address to listen on");
//   ABSL_FLAG(int, threads, 1, "event loops, 1 to 256");
//
//   conet::tools::ParseFlagsOrExit(argc, argv, "echo_server", PrintUsage,
//                                  {.ranges = {{"threads", 1, 256}}});
//   const int threads = absl::GetFlag(FLAGS_threads);  // within 1..256
#ifndef CONET_TOOLS_FLAGS_H_
#define CONET_TOOLS_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace conet::tools {

// An integer flag's allowed values, checked after parsing.
struct FlagRange {
  std::string name;  // as defined
  int64_t min;
  int64_t max;
};

struct FlagRules {
  // The first argument to read (2 after a subcommand such as `fdpass send`).
  int first = 1;
  // If not empty, the only flags accepted (names as defined); others,
  // even if defined in the program, are unknown here.
  std::vector<std::string> known;
  // Whether positional arguments are allowed.
  bool positional = false;
  // Integer flags whose value must be within a range.
  std::vector<FlagRange> ranges;
};

struct ParsedArgs {
  bool help = false;
  std::vector<std::string> positional;
};

// Sets the flags given in argv (see above), then checks `rules.ranges`.
// Stops at the first error.
absl::StatusOr<ParsedArgs> ParseFlags(int argc, char** argv, const FlagRules& rules = {});

// ParseFlags for a program's main(): on --help, calls `print_usage` and
// exits 0; on an error, prints "PROGRAM: MESSAGE (try --help)" to standard
// error and exits 2. Returns the positional arguments.
std::vector<std::string> ParseFlagsOrExit(int argc, char** argv, absl::string_view program,
                                          void (*print_usage)(), const FlagRules& rules = {});

// Prints "PROGRAM: MESSAGE (try --help)" to standard error and returns 2:
// also for a usage error found after parsing (a required flag missing).
int UsageError(absl::string_view program, absl::string_view message);

// Returns OK if `value` of --`name` is within [min, max], else
// InvalidArgumentError "--NAME=VALUE: expected MIN to MAX".
absl::Status CheckRange(absl::string_view name, int64_t value, int64_t min, int64_t max);

}  // namespace conet::tools

#endif  // CONET_TOOLS_FLAGS_H_
