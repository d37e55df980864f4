#include "tools/internal/command_line.h"

#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace conet::tools {

CommandLine::CommandLine(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      help_ = true;
      continue;
    }
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos || eq == 2) {
      Fail(absl::StrCat("bad argument \"", arg, "\": expected --name=value"));
      continue;
    }
    values_[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
  }
}

const std::string* CommandLine::Find(const std::string& name) {
  used_.insert(name);
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

void CommandLine::Fail(std::string message) {
  if (error_.ok()) error_ = absl::InvalidArgumentError(std::move(message));
}

std::string CommandLine::String(const std::string& name, const std::string& fallback) {
  const std::string* value = Find(name);
  return value == nullptr ? fallback : *value;
}

long long CommandLine::Int(const std::string& name, long long fallback, long long min,
                           long long max) {
  const std::string* value = Find(name);
  if (value == nullptr) return fallback;
  long long parsed = 0;
  if (!absl::SimpleAtoi(*value, &parsed) || parsed < min || parsed > max) {
    Fail(absl::StrCat("--", name, "=", *value, ": expected an integer from ", min, " to ", max));
    return fallback;
  }
  return parsed;
}

absl::Duration CommandLine::Duration(const std::string& name, absl::Duration fallback) {
  const std::string* value = Find(name);
  if (value == nullptr) return fallback;
  absl::Duration parsed;
  if (!absl::ParseDuration(*value, &parsed) || parsed < absl::ZeroDuration()) {
    Fail(absl::StrCat("--", name, "=", *value, ": expected a duration such as 5s or 250ms"));
    return fallback;
  }
  return parsed;
}

absl::Status CommandLine::Finish() const {
  if (!error_.ok()) return error_;
  for (const auto& [name, value] : values_) {
    if (used_.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return absl::OkStatus();
}

}  // namespace conet::tools
