#include "examples/file_server/http_request.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace conet::http {

namespace {

constexpr absl::string_view kCrlf = "\r\n";

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}

bool IsToken(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), IsTokenChar);
}

// A field value's characters: visible ASCII, space, tab, and obs-text.
bool IsFieldValue(absl::string_view value) {
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && c != '\t') || byte == 0x7f;
  });
}

absl::string_view TrimSpaceAndTab(absl::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Digits only (no sign, no space), fitting in 63 bits.
std::optional<uint64_t> ParseDigits(absl::string_view text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  if (!std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) return std::nullopt;
  return value;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

ParsedRequest Refuse(int status, std::string reason) {
  ParsedRequest refused;
  refused.error = status;
  refused.reason = std::move(reason);
  refused.keep_alive = false;
  return refused;
}

// The path part of an origin-form or absolute-form target, undecoded.
std::optional<absl::string_view> PathOf(absl::string_view target) {
  for (absl::string_view scheme : {"http://", "https://"}) {
    if (absl::StartsWithIgnoreCase(target, scheme)) {
      target.remove_prefix(scheme.size());
      const size_t slash = target.find('/');
      if (slash == absl::string_view::npos) return absl::string_view("/");
      target.remove_prefix(slash);
      break;
    }
  }
  if (target.empty() || target.front() != '/') return std::nullopt;
  return target.substr(0, target.find('?'));
}

// Percent-decodes `raw` and checks its segments; an error names why not.
absl::StatusOr<std::string> DecodePath(absl::string_view raw) {
  std::string decoded;
  decoded.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      decoded.push_back(raw[i]);
      continue;
    }
    const int high = i + 2 < raw.size() ? HexValue(raw[i + 1]) : -1;
    const int low = high >= 0 ? HexValue(raw[i + 2]) : -1;
    if (low < 0) return absl::InvalidArgumentError("a malformed percent escape");
    if (high == 0 && low == 0) return absl::InvalidArgumentError("a NUL in the path");
    decoded.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  std::string clean;
  for (absl::string_view segment : absl::StrSplit(decoded, '/')) {
    if (segment == "..") return absl::InvalidArgumentError("a \"..\" segment");
    if (segment.empty() || segment == ".") continue;
    absl::StrAppend(&clean, "/", segment);
  }
  if (clean.empty() || decoded.back() == '/') clean.push_back('/');
  return clean;
}

// A Range value with one "bytes=" range; nullopt for anything else, which
// the server ignores (RFC 9110 14.2).
std::optional<RangeSpec> ParseRange(absl::string_view value) {
  const size_t equals = value.find('=');
  if (equals == absl::string_view::npos ||
      !absl::EqualsIgnoreCase(TrimSpaceAndTab(value.substr(0, equals)), "bytes")) {
    return std::nullopt;
  }
  const absl::string_view spec = TrimSpaceAndTab(value.substr(equals + 1));
  const size_t dash = spec.find('-');
  if (dash == absl::string_view::npos || spec.find(',') != absl::string_view::npos) {
    return std::nullopt;
  }
  const absl::string_view first = spec.substr(0, dash);
  const absl::string_view last = spec.substr(dash + 1);
  RangeSpec range;
  if (first.empty()) {
    range.last = ParseDigits(last);  // the suffix length
    if (!range.last) return std::nullopt;
    return range;
  }
  range.first = ParseDigits(first);
  if (!range.first) return std::nullopt;
  if (!last.empty()) {
    range.last = ParseDigits(last);
    if (!range.last || *range.last < *range.first) return std::nullopt;
  }
  return range;
}

// The request line: METHOD SP TARGET SP VERSION.
ParsedRequest ParseRequestLine(absl::string_view line) {
  const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3) return Refuse(400, "the request line is not METHOD TARGET VERSION");
  const absl::string_view method = parts[0];
  const absl::string_view target = parts[1];
  const absl::string_view version = parts[2];
  if (!IsToken(method)) return Refuse(400, "a malformed method");
  if (version.size() != 8 || !absl::StartsWith(version, "HTTP/") || version[6] != '.' ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[5])) ||
      !absl::ascii_isdigit(static_cast<unsigned char>(version[7]))) {
    return Refuse(400, "a malformed HTTP version");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return Refuse(505, "an HTTP version other than 1.0 and 1.1");
  }
  ParsedRequest request;
  request.minor_version = version[7] - '0';
  request.keep_alive = request.minor_version == 1;
  if (method == "GET") {
    request.method = Method::kGet;
  } else if (method == "HEAD") {
    request.method = Method::kHead;
  } else {
    return Refuse(405, "a method other than GET and HEAD");
  }
  if (target.empty() ||
      !std::all_of(target.begin(), target.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return Refuse(400, "a malformed target");
  }
  const std::optional<absl::string_view> raw_path = PathOf(target);
  if (!raw_path) return Refuse(400, "a target that is not a path");
  absl::StatusOr<std::string> path = DecodePath(*raw_path);
  if (!path.ok()) return Refuse(400, std::string(path.status().message()));
  request.path = *std::move(path);
  return request;
}

// Applies one header field to `request`; false (with `request` refused)
// if it is not acceptable.
bool ApplyField(absl::string_view name, absl::string_view value, ParsedRequest& request, int& hosts,
                std::optional<uint64_t>& length) {
  if (absl::EqualsIgnoreCase(name, "host")) {
    ++hosts;
  } else if (absl::EqualsIgnoreCase(name, "connection")) {
    for (absl::string_view option : absl::StrSplit(value, ',')) {
      option = TrimSpaceAndTab(option);
      if (absl::EqualsIgnoreCase(option, "close")) request.keep_alive = false;
      if (absl::EqualsIgnoreCase(option, "keep-alive") && request.minor_version == 0) {
        request.keep_alive = true;
      }
    }
  } else if (absl::EqualsIgnoreCase(name, "content-length")) {
    const std::optional<uint64_t> parsed = ParseDigits(value);
    if (!parsed || (length && *length != *parsed)) {
      request = Refuse(400, "a malformed or conflicting Content-Length");
      return false;
    }
    length = parsed;
  } else if (absl::EqualsIgnoreCase(name, "transfer-encoding")) {
    request = Refuse(400, "a request body in Transfer-Encoding");
    return false;
  } else if (absl::EqualsIgnoreCase(name, "range")) {
    request.range = ParseRange(value);
  }
  return true;
}

}  // namespace

absl::StatusOr<size_t> FindHeadEnd(std::string_view buffered_std) {
  const absl::string_view buffered(buffered_std.data(), buffered_std.size());
  const absl::string_view window = buffered.substr(0, kMaxHead);
  const size_t blank = window.find("\r\n\r\n");
  if (blank != absl::string_view::npos) return blank + 4;
  if (buffered.size() < kMaxHead) return absl::string_view::npos;
  if (window.find(kCrlf) == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("414: a request line longer than ", kMaxHead, " bytes"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("431: a request head longer than ", kMaxHead, " bytes"));
}

int StatusOf(const absl::Status& error) {
  int status = 400;
  if (!absl::SimpleAtoi(error.message().substr(0, 3), &status)) return 400;
  return status;
}

ParsedRequest ParseRequest(std::string_view head_std) {
  absl::string_view head(head_std.data(), head_std.size());
  if (!absl::EndsWith(head, "\r\n\r\n")) return Refuse(400, "a head without its blank line");
  head.remove_suffix(2);  // every line below ends in CRLF
  const size_t line_end = head.find(kCrlf);
  ParsedRequest request = ParseRequestLine(head.substr(0, line_end));
  if (request.error != 0) return request;
  head.remove_prefix(line_end + 2);
  int hosts = 0;
  std::optional<uint64_t> length;
  while (!head.empty()) {
    const size_t end = head.find(kCrlf);
    const absl::string_view line = head.substr(0, end);
    head.remove_prefix(end + 2);
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || !IsToken(line.substr(0, colon))) {
      return Refuse(400, "a malformed header field (or a folded line)");
    }
    const absl::string_view value = TrimSpaceAndTab(line.substr(colon + 1));
    if (line.find('\r') != absl::string_view::npos || line.find('\n') != absl::string_view::npos ||
        !IsFieldValue(value)) {
      return Refuse(400, "a control character in a header field");
    }
    if (!ApplyField(line.substr(0, colon), value, request, hosts, length)) return request;
  }
  if (request.minor_version == 1 && hosts != 1) {
    return Refuse(400, "an HTTP/1.1 request without exactly one Host");
  }
  request.body_length = length.value_or(0);
  return request;
}

std::optional<ByteRange> Resolve(const RangeSpec& spec, uint64_t size) {
  if (spec.first) {
    if (*spec.first >= size) return std::nullopt;
    const uint64_t last = std::min(spec.last.value_or(size - 1), size - 1);
    return ByteRange{*spec.first, last};
  }
  const uint64_t suffix = spec.last.value_or(0);
  if (suffix == 0 || size == 0) return std::nullopt;
  return ByteRange{size > suffix ? size - suffix : 0, size - 1};
}

}  // namespace conet::http
