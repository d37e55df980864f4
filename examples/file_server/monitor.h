// File: examples/file_server/monitor.h
//
// The privileged half of file_server: it alone can open files, and it opens
// them only beneath the root, at the worker's request, over a Channel.
//
//   worker -> monitor   request "OPEN /docs/index.html"
//   monitor -> worker   reply   "OK /docs/index.html" (the path it opened) + the
//                               descriptor (read-only, a regular file)
//                               "ERR 404", "ERR 400" (a malformed request), "ERR 503"
//
// The monitor trusts nothing the worker says: the path is resolved by the
// kernel beneath the root (ipc/open_beneath.h: no "..", symlink or magic
// link out), only regular files go back, a directory (or a path ending in
// "/") is answered with its index.html, and a message with descriptors, a
// plain message or an oversized one is refused without stopping it.
#ifndef CONET_EXAMPLES_FILE_SERVER_MONITOR_H_
#define CONET_EXAMPLES_FILE_SERVER_MONITOR_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "ipc/channel.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::file_server {

// The longest path a request may carry.
inline constexpr size_t kMaxRequestPath = 4096;

// One answer: the reply's text and the descriptor it carries (if any).
struct MonitorReply {
  std::string text;
  UniqueFd file;
};

// Answers one request's bytes ("OPEN /path"), beneath `root_fd`.
MonitorReply Answer(std::string_view request, int root_fd);

// Answers the worker's requests on `channel` until it closes the channel
// (OK) or the channel fails (its error). Refused messages are answered
// (requests) or dropped (plain messages) and serving goes on.
Task<absl::Status> ServeWorker(ipc::Channel& channel, int root_fd);

}  // namespace conet::file_server

#endif  // CONET_EXAMPLES_FILE_SERVER_MONITOR_H_
