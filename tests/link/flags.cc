#include "tools/flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(int, answer, 0, "a number");

int main(int argc, char** argv) {
  absl::StatusOr<conet::tools::ParsedArgs> args = conet::tools::ParseFlags(argc, argv);
  return args.ok() && absl::GetFlag(FLAGS_answer) == 0 ? 0 : 1;
}
