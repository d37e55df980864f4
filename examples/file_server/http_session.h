// File: examples/file_server/http_session.h
//
// One HTTP/1.1 connection of file_server's worker: requests read and
// answered in order (keep-alive, pipelining), each file asked of a
// FileSource (the monitor, over the channel) and sent zero-copy: the head
// with MSG_MORE, then the body by sendfile from the descriptor.
#ifndef CONET_EXAMPLES_FILE_SERVER_HTTP_SESSION_H_
#define CONET_EXAMPLES_FILE_SERVER_HTTP_SESSION_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/tls.h"
#include "net/unique_fd.h"

namespace conet::file_server {

// A file to serve: its descriptor and the path it was opened as (a
// directory's index: "/docs/index.html" for "/docs/"), whose extension
// gives the Content-Type.
struct OpenedFile {
  UniqueFd file;
  std::string path;
};

// Where the worker gets its files.
class FileSource {
 public:
  virtual ~FileSource() = default;
  // Opens `path` (decoded, starting with "/"; a directory means its
  // index): a read-only descriptor of a regular file, or NotFoundError
  // (404), InvalidArgumentError (400), another error (503).
  virtual Task<absl::StatusOr<OpenedFile>> Open(std::string path) = 0;
};

struct SessionOptions {
  // How long a request may take to arrive whole (408 after a part of one;
  // an idle keep-alive connection is closed without a word).
  absl::Duration request_timeout = absl::Seconds(10);
};

// Serves requests on `stream` until the client closes it, a request asks
// to close (or is HTTP/1.0 without keep-alive), a request is malformed (its
// error is sent first), or one times out. On plain TCP a body goes out by
// sendfile behind its head; under TLS it is read (pread) into the records,
// the head sharing the first.
Task<void> ServeHttp(StreamSocket& stream, FileSource& files, SessionOptions options);
Task<void> ServeHttp(TlsStream& stream, FileSource& files, SessionOptions options);

}  // namespace conet::file_server

#endif  // CONET_EXAMPLES_FILE_SERVER_HTTP_SESSION_H_
