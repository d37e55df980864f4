// File: examples/file_server/http_response.h
//
// The response heads file_server's worker sends: the status line and the
// fields the contract names (Date, Last-Modified, Content-Type from a small
// table of extensions, Content-Length, Content-Range, Allow, Connection),
// formatted into one buffer so that head and body leave together.
#ifndef CONET_EXAMPLES_FILE_SERVER_HTTP_RESPONSE_H_
#define CONET_EXAMPLES_FILE_SERVER_HTTP_RESPONSE_H_

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "examples/file_server/http_request.h"

namespace conet::http {

// The reason phrase of `status` ("Not Found"); "Unknown" for others.
std::string_view ReasonPhrase(int status);

// The media type for a file name, by its extension (case-insensitive);
// "application/octet-stream" when the table has none.
std::string_view ContentTypeFor(std::string_view path);

// An IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::string HttpDate(time_t when);

// The head of a response carrying a file (200, or 206 with `range`).
struct FileHead {
  int minor_version = 1;
  bool keep_alive = true;
  std::string_view path;  // for the Content-Type
  uint64_t size = 0;      // the whole file's
  time_t modified = 0;
  time_t now = 0;
  std::optional<ByteRange> range;  // 206 Partial Content
};
// Appends the head for `head` to `out`.
void AppendFileHead(const FileHead& head, std::string& out);

// Appends a whole error response: its head and a short text body (none for
// a HEAD request). 405 carries "Allow: GET, HEAD", 416 "Content-Range:
// bytes */SIZE". Error responses close the connection unless `keep_alive`.
void AppendError(int status, int minor_version, bool keep_alive, bool head_only, time_t now,
                 uint64_t size_for_416, std::string& out);

}  // namespace conet::http

#endif  // CONET_EXAMPLES_FILE_SERVER_HTTP_RESPONSE_H_
