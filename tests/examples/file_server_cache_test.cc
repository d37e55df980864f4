#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>

#include "examples/file_server/file_cache.h"
#include "gtest/gtest.h"
#include "tests/util/scratch_dir.h"
#include "tests/util/test_util.h"

namespace conet::file_server {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

// Opens files in a scratch directory, counting the opens (the monitor's
// round trips).
class CountingSource : public FileSource {
 public:
  explicit CountingSource(const test::ScratchDir& dir) : dir_(&dir) {}
  Task<absl::StatusOr<OpenedFile>> Open(std::string path) override {
    ++opens;
    UniqueFd file(::open(dir_->Path(path.substr(1)).c_str(), O_RDONLY | O_CLOEXEC));
    if (!file.is_open()) co_return absl::NotFoundError(path);
    co_return OpenedFile{std::move(file), path};
  }
  int opens = 0;

 private:
  const test::ScratchDir* dir_;
};

std::string Contents(absl::StatusOr<OpenedFile> opened) {
  if (!opened.ok()) return opened.status().ToString();
  char buffer[64];
  const ssize_t n = ::pread(opened->file.fd(), buffer, sizeof(buffer), 0);
  return std::string(buffer, n > 0 ? static_cast<size_t>(n) : 0);
}

class CacheTest : public ::testing::Test {
 protected:
  std::string Get(const std::string& path) { return Contents(RunTask(cache_.Open(path))); }
  // Replaces the file on disk as a deployment does: a new file renamed over.
  void Replace(const std::string& name, const std::string& contents) {
    dir_.WriteFile(name + ".new", contents);
    ASSERT_EQ(std::rename(dir_.Path(name + ".new").c_str(), dir_.Path(name).c_str()), 0);
  }

  // First in, last out: the cache's descriptors are closed when it goes.
  FdLeakCheck leaks_;
  test::ScratchDir dir_;
  CountingSource source_{dir_};
  absl::Time now_ = absl::FromUnixSeconds(1000);
  CachingFileSource cache_{source_, absl::Seconds(1), 4096, [this] { return now_; }};
};

TEST_F(CacheTest, AHotFileAsksTheMonitorOncePerTtlAndAReplacedOneIsFreshAfterIt) {
  dir_.WriteFile("page", "first");
  EXPECT_EQ(Get("/page"), "first");
  EXPECT_EQ(Get("/page"), "first");
  EXPECT_EQ(source_.opens, 1);
  Replace("page", "second");
  now_ += absl::Milliseconds(900);
  EXPECT_EQ(Get("/page"), "first");  // within the TTL: the descriptor kept
  EXPECT_EQ(source_.opens, 1);
  now_ += absl::Milliseconds(200);
  EXPECT_EQ(Get("/page"), "second");  // past it: opened again
  EXPECT_EQ(source_.opens, 2);
}

TEST_F(CacheTest, FailuresAreNotCachedAndZeroTtlCachesNothing) {
  EXPECT_NE(Get("/absent"), "x");
  dir_.WriteFile("absent", "x");
  EXPECT_EQ(Get("/absent"), "x");  // a 404 was not remembered
  EXPECT_EQ(source_.opens, 2);
  CachingFileSource uncached(source_, absl::ZeroDuration());
  EXPECT_EQ(Contents(RunTask(uncached.Open("/absent"))), "x");
  EXPECT_EQ(Contents(RunTask(uncached.Open("/absent"))), "x");
  EXPECT_EQ(source_.opens, 4);
  EXPECT_EQ(uncached.size(), 0u);
}

TEST_F(CacheTest, AFullCacheDropsExpiredEntriesFirst) {
  CachingFileSource small(source_, absl::Seconds(1), 2, [this] { return now_; });
  for (const char* name : {"a", "b", "c"}) dir_.WriteFile(name, name);
  EXPECT_EQ(Contents(RunTask(small.Open("/a"))), "a");
  EXPECT_EQ(Contents(RunTask(small.Open("/b"))), "b");
  EXPECT_EQ(small.size(), 2u);
  now_ += absl::Seconds(2);
  EXPECT_EQ(Contents(RunTask(small.Open("/c"))), "c");
  EXPECT_EQ(small.size(), 1u);  // a and b had expired
}

}  // namespace
}  // namespace conet::file_server
