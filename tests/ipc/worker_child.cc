// A worker for spawn_worker_test: takes its channel, reports which
// descriptors it has open, and exits with the status the parent asks for
// (or waits to be killed).
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ipc/spawn_worker.h"

int main() {
  absl::StatusOr<conet::UniqueFd> channel = conet::ipc::WorkerChannelFd();
  if (!channel.ok()) return 100;
  std::string open_fds;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int listing = ::dirfd(dir);
    while (dirent* entry = ::readdir(dir)) {
      int fd;
      if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == listing) continue;
      absl::StrAppend(&open_fds, open_fds.empty() ? "" : ",", fd);
    }
    ::closedir(dir);
  }
  const std::string report = absl::StrCat(
      "fds=", open_fds, " env=", std::getenv(conet::ipc::kWorkerFdVariable) ? "set" : "unset");
  if (::send(channel->Get(), report.data(), report.size(), 0) < 0) return 101;
  char request[16];
  const ssize_t n = ::recv(channel->Get(), request, sizeof(request) - 1, 0);
  if (n <= 0) return 102;
  int status = 0;
  if (absl::SimpleAtoi(std::string(request, static_cast<size_t>(n)), &status)) return status;
  ::pause();  // "wait": until a signal ends it
  return 103;
}
