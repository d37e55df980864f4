#include "tools/flags.h"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace conet::tools {
namespace {

bool Known(const FlagRules& rules, absl::string_view name) {
  if (rules.known.empty()) return true;
  for (const std::string& known : rules.known) {
    if (known == name) return true;
  }
  return false;
}

// Sets the flag `name` from `value` (absent: `--name` alone); `seen` holds
// the text each list flag has had so far.
absl::Status SetFlag(absl::string_view name, const std::string* value, const FlagRules& rules,
                     std::map<std::string, std::string>& seen) {
  const std::string defined = absl::StrReplaceAll(name, {{"-", "_"}});
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(defined);
  if (flag == nullptr || !Known(rules, defined)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
  }
  std::string text;
  if (value != nullptr) {
    text = *value;
  } else if (flag->IsOfType<bool>()) {
    text = "true";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " needs a value (--", name, "=...)"));
  }
  if (flag->IsOfType<std::vector<std::string>>()) {
    // An empty list would read as "use the default": say so instead.
    if (text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, "=: expected a value"));
    }
    auto [it, first] = seen.emplace(defined, text);
    if (!first) {
      absl::StrAppend(&it->second, ",", text);
      text = it->second;
    }
  }
  std::string error;
  if (!flag->ParseFrom(text, &error)) {
    return absl::InvalidArgumentError(absl::StrCat("--", name, "=", text, ": ", error));
  }
  return absl::OkStatus();
}

absl::Status CheckRanges(const std::vector<FlagRange>& ranges) {
  for (const FlagRange& range : ranges) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(range.name);
    int64_t value = 0;
    if (flag == nullptr || !absl::SimpleAtoi(flag->CurrentValue(), &value)) {
      return absl::InternalError(absl::StrCat("--", range.name, " is not an integer flag"));
    }
    if (absl::Status s =
            CheckRange(absl::StrReplaceAll(range.name, {{"_", "-"}}), value, range.min, range.max);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ParsedArgs> ParseFlags(int argc, char** argv, const FlagRules& rules) {
  ParsedArgs parsed;
  std::map<std::string, std::string> seen;
  bool flags_done = false;
  for (int i = rules.first; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (!flags_done && arg == "--") {
      flags_done = true;
    } else if (!flags_done && (arg == "--help" || arg == "-h")) {
      parsed.help = true;
    } else if (!flags_done && absl::StartsWith(arg, "--")) {
      const absl::string_view body = arg.substr(2);
      const size_t equals = body.find('=');
      absl::Status set;
      if (equals == absl::string_view::npos) {
        set = SetFlag(body, nullptr, rules, seen);
      } else {
        const std::string value(body.substr(equals + 1));
        set = SetFlag(body.substr(0, equals), &value, rules, seen);
      }
      if (!set.ok()) return set;
    } else if (rules.positional) {
      parsed.positional.emplace_back(arg);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
  }
  if (parsed.help) return parsed;
  if (absl::Status s = CheckRanges(rules.ranges); !s.ok()) return s;
  return parsed;
}

std::vector<std::string> ParseFlagsOrExit(int argc, char** argv, absl::string_view program,
                                          void (*print_usage)(), const FlagRules& rules) {
  absl::StatusOr<ParsedArgs> parsed = ParseFlags(argc, argv, rules);
  if (parsed.ok() && parsed->help) {
    print_usage();
    std::fflush(stdout);
    std::exit(0);
  }
  if (!parsed.ok()) std::exit(UsageError(program, parsed.status().message()));
  return std::move(parsed->positional);
}

int UsageError(absl::string_view program, absl::string_view message) {
  std::fprintf(stderr, "%s: %s (try --help)\n", std::string(program).c_str(),
               std::string(message).c_str());
  return 2;
}

absl::Status CheckRange(absl::string_view name, int64_t value, int64_t min, int64_t max) {
  if (value >= min && value <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, "=", value, ": expected ", min, " to ", max));
}

}  // namespace conet::tools
