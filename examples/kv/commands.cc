#include "examples/kv/commands.h"

#include <limits>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "examples/kv/resp.h"

namespace kv {
namespace {

using Args = std::vector<std::string_view>;

absl::string_view View(std::string_view text) { return {text.data(), text.size()}; }

bool Is(std::string_view arg, absl::string_view name) {
  return absl::EqualsIgnoreCase(View(arg), name);
}

void AppendBulk(std::string_view data, std::string* out) {
  absl::StrAppend(out, "$", data.size(), "\r\n");
  out->append(data);
  out->append("\r\n");
}

void AppendInteger(int64_t value, std::string* out) { absl::StrAppend(out, ":", value, "\r\n"); }

void AppendArity(absl::string_view command, std::string* out) {
  AppendError(absl::StrCat("wrong number of arguments for '", command, "' command"), out);
}

constexpr char kNotInteger[] = "value is not an integer or out of range";

// SET's options after key and value: [EX s|PX ms] [NX|XX], in any order.
struct SetOptions {
  int64_t expires_at_ms = kNoExpiry;
  SetCondition condition = SetCondition::kAlways;
};

// Parses SET's options as Redis 7.0 does: first the syntax (NX excludes
// XX, EX excludes PX; the same option twice is allowed, the last amount
// wins), then the amount. On an error appends it and returns false.
bool ParseSetOptions(const Args& args, int64_t now_ms, SetOptions* options, std::string* out) {
  std::string_view amount;
  bool seconds = false;
  bool nx = false;
  bool xx = false;
  bool ex = false;
  bool px = false;
  for (size_t i = 3; i < args.size(); ++i) {
    const bool has_next = i + 1 < args.size();
    if (Is(args[i], "nx") && !xx) {
      nx = true;
    } else if (Is(args[i], "xx") && !nx) {
      xx = true;
    } else if (Is(args[i], "ex") && !px && has_next) {
      ex = seconds = true;
      amount = args[++i];
    } else if (Is(args[i], "px") && !ex && has_next) {
      px = true;
      seconds = false;
      amount = args[++i];
    } else {
      AppendError("syntax error", out);
      return false;
    }
  }
  options->condition = nx   ? SetCondition::kIfAbsent
                       : xx ? SetCondition::kIfPresent
                            : SetCondition::kAlways;
  if (!ex && !px) return true;
  int64_t value = 0;
  if (!ParseInt64(amount, &value)) {
    AppendError(kNotInteger, out);
    return false;
  }
  const int64_t unit = seconds ? 1000 : 1;
  if (value <= 0 || value > std::numeric_limits<int64_t>::max() / unit ||
      value * unit > std::numeric_limits<int64_t>::max() - now_ms) {
    AppendError("invalid expire time in 'set' command", out);
    return false;
  }
  options->expires_at_ms = now_ms + value * unit;
  return true;
}

void Set(const Args& args, Store& store, int64_t now_ms, std::string* out) {
  if (args.size() < 3) return AppendArity("set", out);
  SetOptions options;
  if (!ParseSetOptions(args, now_ms, &options, out)) return;
  if (store.Set(args[1], args[2], options.expires_at_ms, options.condition, now_ms)) {
    out->append("+OK\r\n");
  } else {
    out->append("$-1\r\n");
  }
}

void Incr(const Args& args, Store& store, int64_t now_ms, std::string* out) {
  if (args.size() != 2) return AppendArity("incr", out);
  absl::StatusOr<int64_t> value = store.Increment(args[1], now_ms);
  if (!value.ok()) return AppendError(std::string(value.status().message()), out);
  AppendInteger(*value, out);
}

void CountKeys(const Args& args, Store& store, int64_t now_ms, bool remove, std::string* out) {
  if (args.size() < 2) return AppendArity(remove ? "del" : "exists", out);
  int64_t count = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    count += remove ? store.Delete(args[i], now_ms) : store.Exists(args[i], now_ms);
  }
  AppendInteger(count, out);
}

void Ping(const Args& args, std::string* out) {
  if (args.size() > 2) return AppendArity("ping", out);
  if (args.size() == 1) {
    out->append("+PONG\r\n");
  } else {
    AppendBulk(args[1], out);
  }
}

// Redis's "unknown command 'NAME', with args beginning with: 'A' 'B' ".
void Unknown(const Args& args, std::string* out) {
  std::string message = absl::StrCat("unknown command '", View(args[0]).substr(0, 128),
                                     "', with args beginning with: ");
  std::string listed;
  for (size_t i = 1; i < args.size() && listed.size() < 128; ++i) {
    absl::StrAppend(&listed, "'", View(args[i]).substr(0, 128 - listed.size()), "' ");
  }
  AppendError(message + listed, out);
}

// CONFIG GET, for what redis-benchmark asks at start: no persistence.
void ConfigGet(std::string_view parameter, std::string* out) {
  const bool save = Is(parameter, "save");
  if (!save && !Is(parameter, "appendonly")) {
    out->append("*0\r\n");
    return;
  }
  out->append("*2\r\n");
  AppendBulk(save ? "save" : "appendonly", out);
  AppendBulk(save ? "" : "no", out);
}

}  // namespace

void AppendError(std::string_view message, std::string* out) {
  const size_t start = out->size();
  absl::StrAppend(out, "-ERR ", View(message));
  for (size_t i = start; i < out->size(); ++i) {
    if ((*out)[i] == '\r' || (*out)[i] == '\n') (*out)[i] = ' ';
  }
  out->append("\r\n");
}

Outcome Execute(const Args& args, Store& store, int64_t now_ms, std::string* out) {
  const std::string_view name = args[0];
  // An HTTP request (a web page posting to 127.0.0.1:6379): Redis closes
  // the connection without a word, before any of its lines can run.
  if (Is(name, "post") || Is(name, "host:")) return Outcome::kCloseSilently;
  if (Is(name, "get")) {
    if (args.size() != 2) {
      AppendArity("get", out);
    } else {
      store.AppendBulk(args[1], now_ms, out);
    }
  } else if (Is(name, "set")) {
    Set(args, store, now_ms, out);
  } else if (Is(name, "ping")) {
    Ping(args, out);
  } else if (Is(name, "echo")) {
    if (args.size() != 2) {
      AppendArity("echo", out);
    } else {
      AppendBulk(args[1], out);
    }
  } else if (Is(name, "del") || Is(name, "exists")) {
    CountKeys(args, store, now_ms, Is(name, "del"), out);
  } else if (Is(name, "incr")) {
    Incr(args, store, now_ms, out);
  } else if (Is(name, "quit")) {
    out->append("+OK\r\n");
    return Outcome::kClose;
  } else if (Is(name, "command")) {
    out->append("*0\r\n");  // what redis-cli asks at start: nothing to tell
  } else if (Is(name, "config") && args.size() == 3 && Is(args[1], "get")) {
    ConfigGet(args[2], out);
  } else {
    Unknown(args, out);
  }
  return Outcome::kContinue;
}

}  // namespace kv
