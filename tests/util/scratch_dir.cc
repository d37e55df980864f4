#include "tests/util/scratch_dir.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace conet::test {

ScratchDir::ScratchDir() {
  char scratch[] = "/tmp/conet-scratch-XXXXXX";
  if (::mkdtemp(scratch) == nullptr) {
    ADD_FAILURE() << "mkdtemp: " << std::strerror(errno);
    std::abort();
  }
  path_ = scratch;
}

ScratchDir::~ScratchDir() {
  const std::string command = "rm -rf '" + path_ + "'";
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
}

std::string ScratchDir::Path(const std::string& relative) const {
  return relative.empty() ? path_ : path_ + "/" + relative;
}

void ScratchDir::MakeDirectory(const std::string& relative) const {
  EXPECT_EQ(::mkdir(Path(relative).c_str(), 0755), 0) << relative << ": " << std::strerror(errno);
}

void ScratchDir::WriteFile(const std::string& relative, const std::string& contents) const {
  const int fd = ::open(Path(relative).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << relative << ": " << std::strerror(errno);
  EXPECT_EQ(::write(fd, contents.data(), contents.size()), static_cast<ssize_t>(contents.size()));
  ::close(fd);
}

void ScratchDir::MakeSymlink(const std::string& relative, const std::string& target) const {
  EXPECT_EQ(::symlink(target.c_str(), Path(relative).c_str()), 0)
      << relative << ": " << std::strerror(errno);
}

void ScratchDir::MakeFifo(const std::string& relative) const {
  EXPECT_EQ(::mkfifo(Path(relative).c_str(), 0644), 0) << relative << ": " << std::strerror(errno);
}

UniqueFd ScratchDir::OpenDirectory(const std::string& relative) const {
  UniqueFd fd(::open(Path(relative).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  EXPECT_TRUE(fd.is_open()) << relative << ": " << std::strerror(errno);
  return fd;
}

}  // namespace conet::test
