#include "ipc/open_beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/scratch_dir.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;
using ::testing::HasSubstr;

// A root directory with a file, a directory, a FIFO and symlinks in and
// out, next to a secret outside it.
class OpenBeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.MakeDirectory("root");
    dir_.MakeDirectory("root/dir");
    dir_.WriteFile("root/dir/page.html", "inside");
    dir_.WriteFile("secret", "outside");
    dir_.MakeSymlink("root/inner_link", "dir/page.html");
    dir_.MakeSymlink("root/outer_link", "../secret");
    dir_.MakeSymlink("root/absolute_link", dir_.Path("secret"));
    dir_.MakeSymlink("root/magic_link", "/proc/self/root/etc/passwd");
    dir_.MakeFifo("root/fifo");
    root_ = dir_.OpenDirectory("root");
    root_fd_ = root_.fd();
  }
  static std::string Read(const UniqueFd& fd) {
    char buffer[64];
    const ssize_t n = ::pread(fd.fd(), buffer, sizeof(buffer), 0);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }

  test::ScratchDir dir_;
  UniqueFd root_;
  int root_fd_ = -1;
};

TEST_F(OpenBeneathTest, OpensFilesAndSymlinksThatStayBeneathTheRoot) {
  FdLeakCheck leaks;
  absl::StatusOr<UniqueFd> file = OpenBeneath(root_fd_, "dir/page.html");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(Read(*file), "inside");
  const int flags = ::fcntl(file->fd(), F_GETFL);
  EXPECT_EQ(flags & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(flags & O_NONBLOCK, 0);  // cleared once open
  EXPECT_NE(::fcntl(file->fd(), F_GETFD) & FD_CLOEXEC, 0);
  absl::StatusOr<UniqueFd> linked = OpenBeneath(root_fd_, "inner_link");
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_EQ(Read(*linked), "inside");
}

TEST_F(OpenBeneathTest, NothingOutsideTheRootIsOpenedHoweverTheWayIsSpelled) {
  FdLeakCheck leaks;
  for (const char* path : {"../secret", "dir/../../secret", "outer_link", "absolute_link",
                           "/etc/passwd", "magic_link"}) {
    absl::StatusOr<UniqueFd> file = OpenBeneath(root_fd_, path);
    if (file.ok()) {
      ADD_FAILURE() << path << " opened: " << Read(*file);
      continue;
    }
    // The magic link is ELOOP; everything else EXDEV.
    EXPECT_TRUE(absl::IsPermissionDenied(file.status()) || std::string(path) == "magic_link")
        << file.status();
  }
  EXPECT_THAT(std::string(OpenBeneath(root_fd_, "../secret").status().message()),
              HasSubstr("the path escapes the root"));
}

TEST_F(OpenBeneathTest, AFifoDoesNotBlockAndIsRefusedWhenOnlyFilesMay) {
  FdLeakCheck leaks;
  absl::StatusOr<UniqueFd> any = OpenBeneath(root_fd_, "fifo");  // returns, no writer needed
  EXPECT_TRUE(any.ok()) << any.status();
  absl::StatusOr<UniqueFd> file = OpenBeneath(root_fd_, "fifo", {.regular_file_only = true});
  EXPECT_TRUE(absl::IsFailedPrecondition(file.status())) << file.status();
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("not a regular file"));
  file = OpenBeneath(root_fd_, "dir", {.regular_file_only = true});
  EXPECT_TRUE(absl::IsFailedPrecondition(file.status())) << file.status();
}

TEST_F(OpenBeneathTest, MissingFilesAndNulBytesAreTheirOwnErrors) {
  FdLeakCheck leaks;
  absl::StatusOr<UniqueFd> missing = OpenBeneath(root_fd_, "dir/absent");
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  absl::StatusOr<UniqueFd> nul = OpenBeneath(root_fd_, std::string("dir\0/x", 6));
  EXPECT_TRUE(absl::IsInvalidArgument(nul.status())) << nul.status();
  // The path in the message is escaped: a peer's bytes never reach a log raw.
  absl::StatusOr<UniqueFd> odd = OpenBeneath(root_fd_, "bad\n\x1b[31mname");
  EXPECT_THAT(std::string(odd.status().message()), HasSubstr("bad\\n\\x1b[31mname"));
}

}  // namespace
}  // namespace conet::ipc
