// File: tools/internal/command_line.h
//
// CommandLine reads the `--name=value` flags conet's programs take (see
// docs/programs/): each flag is looked up once with its
// default, and Finish() then reports the first bad value or unknown flag.
//
//   conet::tools::CommandLine args(argc, argv);
//   if (args.help()) { PrintUsage(); return 0; }
//   std::string listen = args.String("listen", "127.0.0.1:7007");
//   int threads = args.Int("threads", 1, 1, 256);
//   if (absl::Status ok = args.Finish(); !ok.ok()) { ...; return 2; }
#ifndef CONET_TOOLS_INTERNAL_COMMAND_LINE_H_
#define CONET_TOOLS_INTERNAL_COMMAND_LINE_H_

#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace conet::tools {

class CommandLine {
 public:
  // Splits argv into flags; anything not of the form --name=value (other
  // than --help) is an error reported by Finish().
  CommandLine(int argc, char** argv);

  // Reports whether --help (or -h) was given.
  [[nodiscard]] bool help() const { return help_; }
  // Returns --name's value, or `fallback` when absent.
  std::string String(const std::string& name, const std::string& fallback);
  // Returns --name as an integer in [min, max], or `fallback`.
  long long Int(const std::string& name, long long fallback, long long min, long long max);
  // Returns --name as a duration ("5s", "250ms"), or `fallback`.
  absl::Duration Duration(const std::string& name, absl::Duration fallback);
  // Returns the first error: a malformed argument, a bad value, or a flag
  // nobody asked for.
  [[nodiscard]] absl::Status Finish() const;

 private:
  const std::string* Find(const std::string& name);
  void Fail(std::string message);

  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
  bool help_ = false;
  absl::Status error_;
};

}  // namespace conet::tools

#endif  // CONET_TOOLS_INTERNAL_COMMAND_LINE_H_
