#include "ipc/sealed_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/testing.h"
#include "net/unique_fd.h"

namespace conet::ipc {
namespace {

using ::testing::HasSubstr;

UniqueFd Dup(const UniqueFd& fd) { return UniqueFd(::fcntl(fd.fd(), F_DUPFD_CLOEXEC, 0)); }

// A memfd holding `bytes` with exactly `seals` added.
UniqueFd Memfd(const std::string& bytes, int seals) {
  UniqueFd fd(::memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  EXPECT_EQ(::write(fd.fd(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  if (seals != 0) {
    EXPECT_EQ(::fcntl(fd.fd(), F_ADD_SEALS, seals), 0) << std::strerror(errno);
  }
  return fd;
}

TEST(SealedMemoryTest, TheReceiverMapsTheBytesReadOnly) {
  test::FdLeakCheck leaks;
  const std::string bytes(100000, 'x');
  absl::StatusOr<UniqueFd> memfd = CreateSealedMemory("table", bytes);
  CONET_ASSERT_OK(memfd);
  absl::StatusOr<SealedMapping> mapping = MapSealedMemory(Dup(*memfd));
  CONET_ASSERT_OK(mapping);
  EXPECT_EQ(mapping->bytes(), bytes);
  // Read-only for good: the mapping cannot be made writable.
  void* page = const_cast<char*>(mapping->bytes().data());
  EXPECT_NE(::mprotect(page, 4096, PROT_READ | PROT_WRITE), 0);
  EXPECT_EQ(errno, EACCES);
}

TEST(SealedMemoryTest, TheSenderCanNoLongerShrinkGrowOrWriteIt) {
  test::FdLeakCheck leaks;
  absl::StatusOr<UniqueFd> memfd = CreateSealedMemory("table", "sealed bytes");
  CONET_ASSERT_OK(memfd);
  absl::StatusOr<SealedMapping> mapping = MapSealedMemory(Dup(*memfd));
  CONET_ASSERT_OK(mapping);
  EXPECT_EQ(::ftruncate(memfd->fd(), 1), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::ftruncate(memfd->fd(), 1 << 20), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::pwrite(memfd->fd(), "X", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd->fd(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(::fcntl(memfd->fd(), F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);  // sealed seals
  EXPECT_EQ(mapping->bytes(), "sealed bytes");
}

TEST(SealedMemoryTest, AnUnsealedMemfdIsRefused) {
  test::FdLeakCheck leaks;
  absl::StatusOr<SealedMapping> mapping = MapSealedMemory(Memfd("open", 0));
  ASSERT_FALSE(mapping.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(mapping.status()));
  EXPECT_THAT(
      mapping.status().message(),
      HasSubstr("not sealed against F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE"));
}

TEST(SealedMemoryTest, AWritableMemfdIsRefused) {
  test::FdLeakCheck leaks;
  // Its size is fixed, but the sender could still change the bytes.
  absl::StatusOr<SealedMapping> mapping =
      MapSealedMemory(Memfd("writable", F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
  ASSERT_FALSE(mapping.ok());
  EXPECT_THAT(mapping.status().message(), HasSubstr(": not sealed against F_SEAL_WRITE"));
}

TEST(SealedMemoryTest, AMemfdThatCanShrinkIsRefused) {
  test::FdLeakCheck leaks;
  absl::StatusOr<SealedMapping> mapping =
      MapSealedMemory(Memfd("shrinks", F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SEAL));
  ASSERT_FALSE(mapping.ok());
  EXPECT_THAT(mapping.status().message(), HasSubstr(": not sealed against F_SEAL_SHRINK"));
}

TEST(SealedMemoryTest, WhatIsNotAMemfdIsRefused) {
  test::FdLeakCheck leaks;
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd write_end(pipe_fds[1]);
  const int number = pipe_fds[0];
  absl::StatusOr<SealedMapping> mapping = MapSealedMemory(UniqueFd(pipe_fds[0]));
  ASSERT_FALSE(mapping.ok());
  EXPECT_EQ(mapping.status().message(),
            "sealed memory on fd " + std::to_string(number) + ": not a sealable memfd");
}

TEST(SealedMemoryTest, EmptyMemoryMapsToNothing) {
  test::FdLeakCheck leaks;
  absl::StatusOr<UniqueFd> memfd = CreateSealedMemory("empty", "");
  CONET_ASSERT_OK(memfd);
  absl::StatusOr<SealedMapping> mapping = MapSealedMemory(std::move(*memfd));
  CONET_ASSERT_OK(mapping);
  EXPECT_EQ(mapping->size(), 0u);
  EXPECT_EQ(mapping->bytes(), "");
}

TEST(SealedMemoryTest, TheMappingOutlivesTheDescriptorAndMoves) {
  test::FdLeakCheck leaks;
  absl::StatusOr<UniqueFd> memfd = CreateSealedMemory("moves", "still here");
  CONET_ASSERT_OK(memfd);
  absl::StatusOr<SealedMapping> mapping = MapSealedMemory(std::move(*memfd));
  CONET_ASSERT_OK(mapping);
  SealedMapping moved = std::move(*mapping);
  EXPECT_EQ(moved.bytes(), "still here");
  EXPECT_EQ(mapping->size(), 0u);
}

}  // namespace
}  // namespace conet::ipc
