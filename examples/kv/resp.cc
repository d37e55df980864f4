#include "examples/kv/resp.h"

#include <cctype>
#include <climits>
#include <string>

namespace kv {
namespace {

ParseResult Incomplete(size_t needed = 0) {
  ParseResult result;
  result.needed = needed;
  return result;
}

ParseResult Error(std::string message) {
  ParseResult result;
  result.state = ParseState::kError;
  result.error = "Protocol error: " + message;
  return result;
}

ParseResult Complete(size_t consumed) {
  ParseResult result;
  result.state = ParseState::kComplete;
  result.consumed = consumed;
  return result;
}

bool IsSpace(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads a double-quoted word starting after its quote at `*at`; false if
// the quotes do not balance.
bool ReadDoubleQuoted(std::string_view line, size_t* at, std::string* word) {
  size_t i = *at;
  while (i < line.size()) {
    const char c = line[i];
    if (c == '"') {
      if (i + 1 < line.size() && !IsSpace(line[i + 1])) return false;
      *at = i + 1;
      return true;
    }
    if (c == '\\' && i + 3 < line.size() && line[i + 1] == 'x' && HexValue(line[i + 2]) >= 0 &&
        HexValue(line[i + 3]) >= 0) {
      word->push_back(static_cast<char>(HexValue(line[i + 2]) * 16 + HexValue(line[i + 3])));
      i += 4;
      continue;
    }
    if (c == '\\' && i + 1 < line.size()) {
      const char escaped = line[i + 1];
      switch (escaped) {
        case 'n':
          word->push_back('\n');
          break;
        case 'r':
          word->push_back('\r');
          break;
        case 't':
          word->push_back('\t');
          break;
        case 'b':
          word->push_back('\b');
          break;
        case 'a':
          word->push_back('\a');
          break;
        default:
          word->push_back(escaped);
          break;
      }
      i += 2;
      continue;
    }
    word->push_back(c);
    ++i;
  }
  return false;
}

// Reads a single-quoted word starting after its quote at `*at`.
bool ReadSingleQuoted(std::string_view line, size_t* at, std::string* word) {
  size_t i = *at;
  while (i < line.size()) {
    const char c = line[i];
    if (c == '\\' && i + 1 < line.size() && line[i + 1] == '\'') {
      word->push_back('\'');
      i += 2;
      continue;
    }
    if (c == '\'') {
      if (i + 1 < line.size() && !IsSpace(line[i + 1])) return false;
      *at = i + 1;
      return true;
    }
    word->push_back(c);
    ++i;
  }
  return false;
}

// Splits an inline command line into words as redis-cli and Redis do:
// spaces separate, quotes group, escapes in double quotes are decoded.
// The words are copied into `request->decoded`.
bool SplitInline(std::string_view line, Request* request) {
  size_t i = 0;
  while (true) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size()) return true;
    std::string& word = request->decoded.emplace_back();
    if (line[i] == '"' || line[i] == '\'') {
      const bool double_quoted = line[i++] == '"';
      const bool balanced =
          double_quoted ? ReadDoubleQuoted(line, &i, &word) : ReadSingleQuoted(line, &i, &word);
      if (!balanced) return false;
      continue;
    }
    const size_t start = i;
    while (i < line.size() && !IsSpace(line[i])) ++i;
    word.assign(line.substr(start, i - start));
  }
}

ParseResult ParseInline(std::string_view input, Request* request) {
  const size_t newline = input.find('\n');
  if (newline == std::string_view::npos) {
    if (input.size() > kMaxLineBytes) return Error("too big inline request");
    return Incomplete();
  }
  std::string_view line = input.substr(0, newline);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!SplitInline(line, request)) return Error("unbalanced quotes in request");
  for (const std::string& word : request->decoded) request->args.push_back(word);
  return Complete(newline + 1);
}

// Finds the "\r\n"-ended line at `at`; npos if it has not all arrived.
size_t LineEnd(std::string_view input, size_t at) {
  const size_t cr = input.find('\r', at);
  if (cr == std::string_view::npos || cr + 1 >= input.size()) return std::string_view::npos;
  return cr;
}

ParseResult ParseArray(std::string_view input, Request* request) {
  const size_t header_end = LineEnd(input, 0);
  if (header_end == std::string_view::npos) {
    if (input.size() > kMaxLineBytes) return Error("too big mbulk count string");
    return Incomplete();
  }
  int64_t count = 0;
  if (!ParseInt64(input.substr(1, header_end - 1), &count) || count > INT_MAX) {
    return Error("invalid multibulk length");
  }
  size_t at = header_end + 2;
  if (count <= 0) return Complete(at);
  request->args.reserve(count < 64 ? count : 64);
  for (int64_t k = 0; k < count; ++k) {
    const size_t end = LineEnd(input, at);
    if (end == std::string_view::npos) {
      if (input.size() - at > kMaxLineBytes) return Error("too big bulk count string");
      return Incomplete();
    }
    if (input[at] != '$') return Error(std::string("expected '$', got '") + input[at] + "'");
    int64_t length = 0;
    if (!ParseInt64(input.substr(at + 1, end - at - 1), &length) || length < 0 ||
        static_cast<uint64_t>(length) > kMaxBulkBytes) {
      return Error("invalid bulk length");
    }
    at = end + 2;
    // The bulk string and its "\r\n" (not checked, as Redis does not).
    const size_t needed = at + static_cast<size_t>(length) + 2;
    if (input.size() < needed) return Incomplete(needed);
    request->args.push_back(input.substr(at, static_cast<size_t>(length)));
    at = needed;
  }
  return Complete(at);
}

}  // namespace

ParseResult ParseRequest(std::string_view input, Request* request) {
  request->args.clear();
  request->decoded.clear();
  if (input.empty()) return Incomplete();
  if (input[0] == '*') return ParseArray(input, request);
  return ParseInline(input, request);
}

bool ParseInt64(std::string_view text, int64_t* value) {
  if (text.empty() || text.size() > 20) return false;
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) ++i;
  if (i == text.size()) return false;
  if (text[i] == '0') {
    if (text.size() != i + 1 || negative) return false;
    *value = 0;
    return true;
  }
  uint64_t magnitude = 0;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) return false;
    magnitude = magnitude * 10 + digit;
  }
  if (negative) {
    if (magnitude > static_cast<uint64_t>(INT64_MAX) + 1) return false;
    *value = static_cast<int64_t>(0 - magnitude);
  } else {
    if (magnitude > static_cast<uint64_t>(INT64_MAX)) return false;
    *value = static_cast<int64_t>(magnitude);
  }
  return true;
}

}  // namespace kv
