// File: examples/file_server/http_request.h
//
// The HTTP/1.1 request parser of file_server's worker: small enough to
// review, strict about what it accepts. It reads a request head (the
// request line and the header fields, through the blank line) and yields
// what a static file server needs, or the status to answer with.
//
//   absl::StatusOr<size_t> end = conet::http::FindHeadEnd(buffered);
//   // npos: more bytes may complete it; an error: the status to send
//   conet::http::ParsedRequest parsed = conet::http::ParseRequest(head);
//   if (parsed.error != 0) ...  // 400, 405, 414, 431, 505
//
// What it accepts (RFC 9112, narrowed): lines end in CRLF; the request line
// is METHOD SP TARGET SP HTTP/1.x; the target is origin-form ("/path?q")
// or absolute-form ("http://host/path"); field names are tokens, values
// have no control characters but tab, no line folding; an HTTP/1.1
// request has one Host; Content-Length, if any, is one number (the body is
// skipped by the caller); Transfer-Encoding is refused. The path is
// percent-decoded; a NUL, a malformed escape or a ".." segment is refused.
#ifndef CONET_EXAMPLES_FILE_SERVER_HTTP_REQUEST_H_
#define CONET_EXAMPLES_FILE_SERVER_HTTP_REQUEST_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace conet::http {

// The most a request head may take: longer request lines are 414, longer
// heads 431.
inline constexpr size_t kMaxHead = 8192;

// Where the head in `buffered` ends (the offset just past its blank line),
// std::string_view::npos while more bytes may still complete it, or the
// status to answer (414: no request line within kMaxHead bytes; 431: no
// blank line within them).
absl::StatusOr<size_t> FindHeadEnd(std::string_view buffered);
// The HTTP status code an error of FindHeadEnd stands for.
int StatusOf(const absl::Status& error);

enum class Method { kGet, kHead };

// A byte range as the request gave it: bytes=first-last, first-, -suffix.
struct RangeSpec {
  std::optional<uint64_t> first;
  std::optional<uint64_t> last;  // with no first: the suffix length
};

struct ParsedRequest {
  // 0 when the request is one to serve; else the status to answer (and
  // then close the connection): 400, 405, 505.
  int error = 0;
  std::string reason;  // why, for a log (never echoed to the client)
  Method method = Method::kGet;
  int minor_version = 1;  // HTTP/1.0 or HTTP/1.1
  std::string path;       // decoded, starting with "/", no ".." segment
  bool keep_alive = true;
  uint64_t body_length = 0;        // Content-Length: bytes to skip after the head
  std::optional<RangeSpec> range;  // a single "bytes=" range, if well formed
};

// Parses one request head (as FindHeadEnd delimited it, blank line
// included).
ParsedRequest ParseRequest(std::string_view head);

// The byte range [first, last] of a file of `size` bytes that `spec`
// selects, or nullopt when none of it lies in the file (416).
struct ByteRange {
  uint64_t first;
  uint64_t last;
};
std::optional<ByteRange> Resolve(const RangeSpec& spec, uint64_t size);

}  // namespace conet::http

#endif  // CONET_EXAMPLES_FILE_SERVER_HTTP_REQUEST_H_
