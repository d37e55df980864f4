#include "tests/util/test_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace conet::test {

std::vector<UniqueFd> PipeReadEnds(size_t count) {
  std::vector<UniqueFd> fds;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return fds;
  }
  ::close(p[1]);
  fds.emplace_back(p[0]);
  while (fds.size() < count) fds.emplace_back(::fcntl(p[0], F_DUPFD_CLOEXEC, 0));
  return fds;
}

std::vector<int> RawFds(const std::vector<UniqueFd>& fds) {
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.fd());
  return raw;
}

SharedTempDir::SharedTempDir() {
  char name[] = "/tmp/conet-shared-XXXXXX";
  if (::mkdtemp(name) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    std::abort();
  }
  path_ = name;
  ::chmod(path_.c_str(), 01777);
}

SharedTempDir::~SharedTempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

int AsNobody(const std::function<bool()>& action) {
  const pid_t child = ::fork();
  if (child == 0) {
    const passwd* nobody = ::getpwnam("nobody");
    if (nobody == nullptr || ::setgroups(0, nullptr) != 0 || ::setgid(nobody->pw_gid) != 0 ||
        ::setuid(nobody->pw_uid) != 0) {
      ::_exit(2);
    }
    ::_exit(action() ? 0 : 1);
  }
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child) return 2;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

}  // namespace conet::test
