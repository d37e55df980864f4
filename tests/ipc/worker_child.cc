// A worker for spawn_worker_test: takes its channel, reports which
// descriptors it has open and the names of its environment variables, and
// exits with the status the parent asks for (or waits to be killed).
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ipc/spawn_worker.h"

extern char** environ;

namespace {

std::string OpenFds() {
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
  return open_fds;
}

std::string VariableNames() {
  std::string names;
  for (char** var = environ; *var != nullptr; ++var) {
    const std::string entry(*var);
    absl::StrAppend(&names, names.empty() ? "" : ",", entry.substr(0, entry.find('=')));
  }
  return names;
}

}  // namespace

int main() {
  absl::StatusOr<conet::UniqueFd> channel = conet::ipc::WorkerChannelFd();
  if (!channel.ok()) return 100;
  // Taken before anything else opens a descriptor of its own.
  const std::string fds = OpenFds();
  std::string report = absl::StrCat("fds=", fds, " env=", VariableNames());
  // What it started with, when asked (the variable then shows in env=).
  if (std::getenv("CONET_TEST_REPORT_PRIVS") != nullptr) {
    int pdeath = 0;
    ::prctl(PR_GET_PDEATHSIG, &pdeath, 0, 0, 0);
    rlimit files{};
    rlimit core{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    ::getrlimit(RLIMIT_CORE, &core);
    absl::StrAppend(&report, " nnp=", ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), " pdeath=", pdeath,
                    " nofile=", files.rlim_cur, "/", files.rlim_max, " core=", core.rlim_cur, "/",
                    core.rlim_max);
  }
  if (::send(channel->fd(), report.data(), report.size(), 0) < 0) return 101;
  char request[16];
  const ssize_t n = ::recv(channel->fd(), request, sizeof(request) - 1, 0);
  if (n <= 0) return 102;
  int status = 0;
  if (absl::SimpleAtoi(std::string(request, static_cast<size_t>(n)), &status)) return status;
  ::pause();  // "wait": until a signal ends it
  return 103;
}
