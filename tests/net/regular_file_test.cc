#include "net/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::testing::HasSubstr;

class RegularFileTest : public ::testing::Test {
 protected:
  RegularFileTest() {
    char name[] = "/tmp/conet-regular-XXXXXX";
    dir_ = ::mkdtemp(name);
  }
  ~RegularFileTest() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  void Write(const std::string& name, const std::string& text) {
    UniqueFd fd(::open(Path(name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_EQ(::write(fd.fd(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
  }

  std::string dir_;
  FdLeakCheck leaks_;
};

TEST_F(RegularFileTest, OpensAnExistingFileReadOnlyAndBlocking) {
  Write("a", "text");
  absl::StatusOr<UniqueFd> fd = OpenRegularFile(Path("a"));
  ASSERT_TRUE(fd.ok()) << fd.status();
  char buffer[8];
  EXPECT_EQ(::read(fd->fd(), buffer, sizeof(buffer)), 4);
  const int flags = ::fcntl(fd->fd(), F_GETFL);
  EXPECT_EQ(flags & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(fd->fd(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST_F(RegularFileTest, AMissingFileIsNotFoundUnlessCreationIsAsked) {
  EXPECT_TRUE(absl::IsNotFound(OpenRegularFile(Path("missing")).status()));
  ::umask(022);
  absl::StatusOr<UniqueFd> fd =
      OpenRegularFile(Path("new"), {.flags = O_WRONLY | O_APPEND, .create_mode = 0640});
  ASSERT_TRUE(fd.ok()) << fd.status();
  struct stat st;
  ASSERT_EQ(::stat(Path("new").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
}

TEST_F(RegularFileTest, ASymlinkIsNeitherFollowedNorItsTargetCreated) {
  Write("target", "secret");
  ASSERT_EQ(::symlink(Path("target").c_str(), Path("link").c_str()), 0);
  absl::StatusOr<UniqueFd> fd =
      OpenRegularFile(Path("link"), {.flags = O_WRONLY | O_APPEND, .create_mode = 0640});
  EXPECT_TRUE(absl::IsPermissionDenied(fd.status())) << fd.status();
  EXPECT_THAT(fd.status().message(), HasSubstr("symbolic link"));
  // A dangling symlink: O_CREAT alone would create its target.
  ASSERT_EQ(::symlink(Path("absent").c_str(), Path("dangling").c_str()), 0);
  fd = OpenRegularFile(Path("dangling"), {.flags = O_WRONLY, .create_mode = 0640});
  EXPECT_TRUE(absl::IsPermissionDenied(fd.status())) << fd.status();
  EXPECT_FALSE(std::filesystem::exists(Path("absent")));
}

TEST_F(RegularFileTest, AFifoIsRefusedWithoutWaitingForAPeer) {
  ASSERT_EQ(::mkfifo(Path("fifo").c_str(), 0600), 0);
  // Read-only: a blocking open would wait for a writer forever.
  absl::StatusOr<UniqueFd> fd = OpenRegularFile(Path("fifo"));
  EXPECT_TRUE(absl::IsFailedPrecondition(fd.status())) << fd.status();
  EXPECT_THAT(fd.status().message(), HasSubstr("not a regular file"));
}

TEST_F(RegularFileTest, ADirectoryIsRefused) {
  absl::StatusOr<UniqueFd> fd = OpenRegularFile(dir_);
  EXPECT_TRUE(absl::IsFailedPrecondition(fd.status())) << fd.status();
}

TEST_F(RegularFileTest, AHardLinkIsRefusedUnlessAllowed) {
  Write("original", "x");
  ASSERT_EQ(::link(Path("original").c_str(), Path("linked").c_str()), 0);
  absl::StatusOr<UniqueFd> fd = OpenRegularFile(Path("linked"));
  EXPECT_TRUE(absl::IsFailedPrecondition(fd.status())) << fd.status();
  EXPECT_THAT(fd.status().message(), HasSubstr("2 hard links"));
  EXPECT_TRUE(OpenRegularFile(Path("linked"), {.allow_hard_links = true}).ok());
}

}  // namespace
}  // namespace conet
