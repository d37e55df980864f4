#include "examples/file_server/http_response.h"

#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace conet::http {

namespace {

constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kTypes = {{
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff2", "font/woff2"},
}};

void AppendStatusLine(int status, int minor_version, std::string& out) {
  absl::StrAppend(&out, "HTTP/1.", minor_version, " ", status, " ",
                  absl::string_view(ReasonPhrase(status).data(), ReasonPhrase(status).size()),
                  "\r\n");
}

void AppendCommon(int minor_version, bool keep_alive, time_t now, std::string& out) {
  absl::StrAppend(&out, "Server: conet-file_server\r\nDate: ", HttpDate(now), "\r\n");
  // HTTP/1.1 keeps alive unless told; HTTP/1.0 closes unless told.
  if (!keep_alive && minor_version == 1) absl::StrAppend(&out, "Connection: close\r\n");
  if (keep_alive && minor_version == 0) absl::StrAppend(&out, "Connection: keep-alive\r\n");
}

}  // namespace

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 416:
      return "Range Not Satisfiable";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string_view ContentTypeFor(std::string_view path) {
  const size_t slash = path.rfind('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const size_t dot = name.rfind('.');
  if (dot != std::string_view::npos && dot + 1 < name.size()) {
    const std::string extension =
        absl::AsciiStrToLower(absl::string_view(name.data() + dot + 1, name.size() - dot - 1));
    for (const auto& [known, type] : kTypes) {
      if (extension == known) return type;
    }
  }
  return "application/octet-stream";
}

std::string HttpDate(time_t when) {
  tm parts{};
  ::gmtime_r(&when, &parts);
  char text[64];
  const size_t length = std::strftime(text, sizeof(text), "%a, %d %b %Y %H:%M:%S GMT", &parts);
  return std::string(text, length);
}

void AppendFileHead(const FileHead& head, std::string& out) {
  AppendStatusLine(head.range ? 206 : 200, head.minor_version, out);
  AppendCommon(head.minor_version, head.keep_alive, head.now, out);
  const std::string_view type = ContentTypeFor(head.path);
  absl::StrAppend(&out, "Content-Type: ", absl::string_view(type.data(), type.size()),
                  "\r\nLast-Modified: ", HttpDate(head.modified), "\r\nAccept-Ranges: bytes\r\n");
  if (head.range) {
    absl::StrAppend(&out, "Content-Range: bytes ", head.range->first, "-", head.range->last, "/",
                    head.size, "\r\nContent-Length: ", head.range->last - head.range->first + 1,
                    "\r\n\r\n");
  } else {
    absl::StrAppend(&out, "Content-Length: ", head.size, "\r\n\r\n");
  }
}

void AppendError(int status, int minor_version, bool keep_alive, bool head_only, time_t now,
                 uint64_t size_for_416, std::string& out) {
  const std::string_view reason = ReasonPhrase(status);
  const std::string body =
      absl::StrCat(status, " ", absl::string_view(reason.data(), reason.size()), "\n");
  AppendStatusLine(status, minor_version, out);
  AppendCommon(minor_version, keep_alive, now, out);
  if (status == 405) absl::StrAppend(&out, "Allow: GET, HEAD\r\n");
  if (status == 416) absl::StrAppend(&out, "Content-Range: bytes */", size_for_416, "\r\n");
  absl::StrAppend(&out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ", body.size(),
                  "\r\n\r\n");
  if (!head_only) out += body;
}

}  // namespace conet::http
