#include "examples/file_server/http_session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "examples/file_server/http_request.h"
#include "examples/file_server/http_response.h"
#include "net/buffered_stream.h"

namespace conet::file_server {

namespace {

// The largest piece of a body read for one TLS record.
constexpr size_t kTlsChunk = 16 * 1024;

// Sends `head` and then `count` bytes of `fd` from `offset`.
Task<absl::StatusOr<size_t>> SendBody(StreamSocket& stream, std::string& head, int fd, off_t offset,
                                      size_t count) {
  co_return co_await stream.SendFileAfter(head, fd, offset, count);
}

Task<absl::StatusOr<size_t>> SendBody(TlsStream& stream, std::string& head, int fd, off_t offset,
                                      size_t count) {
  std::string& chunk = head;  // the head travels with the first bytes
  size_t sent = 0;
  while (true) {
    const size_t want = std::min(kTlsChunk, count - sent);
    const size_t start = chunk.size();
    chunk.resize(start + want);
    const ssize_t got = want == 0 ? 0 : ::pread(fd, chunk.data() + start, want, offset);
    if (got < 0) co_return absl::ErrnoToStatus(errno, "pread of a body");
    if (want > 0 && got == 0) co_return absl::OutOfRangeError("the file ended early");
    chunk.resize(start + static_cast<size_t>(got));
    absl::StatusOr<size_t> written = co_await stream.WriteAll(chunk);
    if (!written.ok()) co_return written.status();
    sent += static_cast<size_t>(got);
    offset += got;
    chunk.clear();
    if (sent == count) co_return sent;
  }
}

// What ReadHead found: a whole head of `length` bytes, the status to answer
// instead (408, 414, 431), or neither: the connection is over (closed, idle
// past the deadline, failed).
struct HeadRead {
  size_t length = 0;
  int error = 0;
};

template <typename Reader>
Task<HeadRead> ReadHead(Reader& reader, Cancellation deadline) {
  while (true) {
    absl::StatusOr<size_t> end = http::FindHeadEnd(reader.buffered());
    if (!end.ok()) co_return HeadRead{0, http::StatusOf(end.status())};
    if (*end != std::string_view::npos) co_return HeadRead{*end, 0};
    absl::StatusOr<size_t> n = co_await reader.ReadMore(deadline);
    if (!n.ok() && absl::IsDeadlineExceeded(n.status()) && !reader.buffered().empty()) {
      co_return HeadRead{0, 408};
    }
    if (!n.ok() || *n == 0) co_return HeadRead{};
  }
}

int StatusFor(const absl::Status& error) {
  if (absl::IsNotFound(error)) return 404;
  if (absl::IsInvalidArgument(error)) return 400;
  return 503;
}

// The head of a file response, or the status to answer instead.
struct Planned {
  int error = 0;
  uint64_t size = 0;  // for a 416
  off_t offset = 0;
  size_t count = 0;
};

Planned Plan(const http::ParsedRequest& request, const OpenedFile& opened, std::string& out) {
  const int fd = opened.file.fd();
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) return Planned{404};
  const auto size = static_cast<uint64_t>(info.st_size);
  http::FileHead head;
  head.minor_version = request.minor_version;
  head.keep_alive = request.keep_alive;
  head.path = opened.path;
  head.size = size;
  head.modified = info.st_mtim.tv_sec;
  head.now = ::time(nullptr);
  Planned planned{0, size, 0, static_cast<size_t>(size)};
  if (request.range) {
    head.range = http::Resolve(*request.range, size);
    if (!head.range) return Planned{416, size};
    planned.offset = static_cast<off_t>(head.range->first);
    planned.count = static_cast<size_t>(head.range->last - head.range->first + 1);
  }
  http::AppendFileHead(head, out);
  return planned;
}

template <typename Stream>
Task<void> Serve(Stream& stream, FileSource& files, SessionOptions options) {
  BufferedReader<Stream> reader(stream);
  std::string out;
  while (true) {
    const Cancellation deadline = Within(options.request_timeout);
    const HeadRead head = co_await ReadHead(reader, deadline);
    out.clear();
    if (head.error != 0) {
      http::AppendError(head.error, 1, false, false, ::time(nullptr), 0, out);
      (void)co_await stream.WriteAll(out);
      co_return;
    }
    if (head.length == 0) co_return;
    http::ParsedRequest request = http::ParseRequest(reader.buffered().substr(0, head.length));
    reader.Consume(head.length);
    if (request.error == 0 && request.body_length > 0) request = {.error = 400};
    const bool head_only = request.method == http::Method::kHead;
    int status = request.error;
    Planned planned;
    OpenedFile file;
    if (status == 0) {
      absl::StatusOr<OpenedFile> opened = co_await files.Open(request.path);
      if (opened.ok()) file = *std::move(opened);
      status = opened.ok() ? 0 : StatusFor(opened.status());
    }
    if (status == 0) {
      planned = Plan(request, file, out);
      status = planned.error;
    }
    // A request that could not be parsed leaves the stream's framing in
    // doubt: close after answering it. A missing file keeps the connection.
    const bool keep_alive = request.keep_alive && (status == 0 || status == 404 || status == 416);
    absl::StatusOr<size_t> sent;
    if (status != 0) {
      http::AppendError(status, request.minor_version, keep_alive, head_only, ::time(nullptr),
                        planned.size, out);
      sent = co_await stream.WriteAll(out);
    } else if (head_only) {
      sent = co_await stream.WriteAll(out);
    } else {
      sent = co_await SendBody(stream, out, file.file.fd(), planned.offset, planned.count);
    }
    if (!sent.ok() || !keep_alive) co_return;
  }
}

}  // namespace

Task<void> ServeHttp(StreamSocket& stream, FileSource& files, SessionOptions options) {
  co_await Serve(stream, files, options);
}

Task<void> ServeHttp(TlsStream& stream, FileSource& files, SessionOptions options) {
  co_await Serve(stream, files, options);
  (void)co_await stream.Shutdown(Within(absl::Seconds(1)));  // close_notify
}

}  // namespace conet::file_server
