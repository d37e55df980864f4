#include "examples/file_server/monitor.h"

#include <sys/stat.h>

#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "ipc/open_beneath.h"

namespace conet::file_server {

namespace {

MonitorReply Refusal(std::string_view code) { return MonitorReply{std::string(code), {}}; }

// The reply for a failed open: 404 for anything the worker may not have.
MonitorReply ForFailure(const absl::Status& error) {
  if (absl::IsInvalidArgument(error)) return Refusal("ERR 400");
  if (absl::IsResourceExhausted(error) || absl::IsUnavailable(error)) return Refusal("ERR 503");
  return Refusal("ERR 404");
}

// Receive's errors that cost one message, not the channel.
bool IsRefusedMessage(const absl::Status& error) {
  return absl::IsInvalidArgument(error) || absl::IsResourceExhausted(error) ||
         absl::IsOutOfRange(error) || absl::IsDataLoss(error);
}

}  // namespace

MonitorReply Answer(std::string_view request, int root_fd) {
  constexpr std::string_view kOpen = "OPEN /";
  if (!request.starts_with(kOpen) || request.size() - kOpen.size() + 1 > kMaxRequestPath) {
    return Refusal("ERR 400");
  }
  const std::string_view path = request.substr(kOpen.size());
  std::string relative(path);
  if (relative.empty() || relative.back() == '/') relative += "index.html";
  // Opened whatever it is, then looked at once: a directory is answered
  // with its index, anything else but a regular file is not served.
  absl::StatusOr<UniqueFd> file = ipc::OpenBeneath(root_fd, relative);
  struct stat info {};
  if (file.ok() && ::fstat(file->fd(), &info) == 0 && S_ISDIR(info.st_mode)) {
    relative += "/index.html";
    ipc::OpenBeneathOptions regular;
    regular.regular_file_only = true;
    file = ipc::OpenBeneath(root_fd, relative, regular);
  } else if (file.ok() && !S_ISREG(info.st_mode)) {
    return Refusal("ERR 404");
  }
  if (!file.ok()) return ForFailure(file.status());
  return MonitorReply{"OK /" + relative, *std::move(file)};
}

Task<absl::Status> ServeWorker(ipc::Channel& channel, int root_fd) {
  while (true) {
    absl::StatusOr<ipc::Message> request = co_await channel.Receive();
    if (!request.ok() && ipc::IsEndOfChannel(request.status())) co_return absl::OkStatus();
    // An oversized or malformed message, too many descriptors: the channel
    // closed what came and reported it; the socket is still good.
    if (!request.ok() && IsRefusedMessage(request.status())) continue;
    if (!request.ok()) co_return request.status();
    if (request->request_id == 0) continue;  // only requests are answered
    MonitorReply reply =
        request->fds.empty() ? Answer(request->bytes, root_fd) : Refusal("ERR 400");
    std::vector<int> fds;
    if (reply.file.is_open()) fds.push_back(reply.file.fd());
    absl::Status sent = co_await channel.Reply(*request, std::move(reply.text), std::move(fds));
    if (!sent.ok()) co_return sent;
  }
}

}  // namespace conet::file_server
