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

// What a backslash and `c` stand for in a double-quoted word.
char Unescaped(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// Splits an inline command line into words exactly as Redis does
// (sdssplitargs): blanks separate words; a double or single quote anywhere
// in a word starts a quoted part, which must end at a space or the end of
// the line; in double quotes \xHH, \n, \r, \t, \b, \a and \<c> are
// decoded, in single quotes only \'. As in Redis, whose line is a C
// string, a NUL ends the line. False for quotes that do not balance.
bool SplitInline(std::string_view line, Request* request) {
  line = line.substr(0, line.find('\0'));
  size_t i = 0;
  const auto at = [&](size_t k) { return k < line.size() ? line[k] : '\0'; };
  while (true) {
    while (i < line.size() && IsSpace(line[i])) ++i;
    if (i == line.size()) return true;
    std::string& word = request->decoded.emplace_back();
    bool in_double = false;
    bool in_single = false;
    bool done = false;
    while (!done) {
      const char c = at(i);
      if (in_double) {
        if (c == '\\' && at(i + 1) == 'x' && HexValue(at(i + 2)) >= 0 && HexValue(at(i + 3)) >= 0) {
          word.push_back(static_cast<char>(HexValue(at(i + 2)) * 16 + HexValue(at(i + 3))));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          word.push_back(Unescaped(at(++i)));
        } else if (c == '"') {
          if (at(i + 1) != '\0' && !IsSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;  // unterminated
        } else {
          word.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(i + 1) == '\'') {
          word.push_back('\'');
          ++i;
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !IsSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          word.push_back(c);
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
        done = true;
      } else if (c == '"') {
        in_double = true;
      } else if (c == '\'') {
        in_single = true;
      } else {
        word.push_back(c);
      }
      if (i < line.size()) ++i;
    }
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

// Starts a new request's progress: reads the "*N" header.
ParseResult ReadArrayHeader(std::string_view input, Request* request) {
  const size_t header_end = LineEnd(input, 0);
  if (header_end == std::string_view::npos) {
    if (input.size() > kMaxLineBytes) return Error("too big mbulk count string");
    return Incomplete();
  }
  int64_t count = 0;
  if (!ParseInt64(input.substr(1, header_end - 1), &count) || count > INT_MAX) {
    return Error("invalid multibulk length");
  }
  request->expected = count;
  request->resume_at = header_end + 2;
  request->spans.clear();
  return Complete(request->resume_at);
}

// Parses the elements of an array request from where the last call stopped.
ParseResult ParseArray(std::string_view input, Request* request) {
  if (request->expected < 0) {
    ParseResult header = ReadArrayHeader(input, request);
    if (header.state != ParseState::kComplete) return header;
  }
  size_t at = request->resume_at;
  while (static_cast<int64_t>(request->spans.size()) < request->expected) {
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
    // The bulk string and its "\r\n" (not checked, as Redis does not).
    const size_t needed = end + 2 + static_cast<size_t>(length) + 2;
    if (input.size() < needed) return Incomplete(needed);
    request->spans.emplace_back(end + 2, static_cast<size_t>(length));
    request->resume_at = at = needed;
  }
  request->args.reserve(request->spans.size());
  for (const auto& [offset, length] : request->spans) {
    request->args.push_back(input.substr(offset, length));
  }
  return Complete(at);
}

}  // namespace

ParseResult ParseRequest(std::string_view input, Request* request) {
  request->args.clear();
  request->decoded.clear();
  if (input.empty()) return Incomplete();
  if (input[0] != '*') return ParseInline(input, request);
  ParseResult result = ParseArray(input, request);
  if (result.state != ParseState::kIncomplete) {
    request->expected = -1;  // the next call starts a new request
    request->spans.clear();
  }
  return result;
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
