#include "net/bytes.h"

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace conet {
namespace {

size_t SizeOf(ConstBytes bytes) { return bytes.size(); }

TEST(ConstBytesTest, AStringLiteralIsItsCharactersWithoutTheNul) {
  EXPECT_EQ(SizeOf("abc"), 3u);
  EXPECT_EQ(SizeOf(""), 0u);
  static constexpr char kGreeting[] = "hello";
  EXPECT_EQ(SizeOf(kGreeting), 5u);
  // A const array with no final NUL is not cut short.
  static constexpr char kRaw[] = {'a', 'b'};
  EXPECT_EQ(SizeOf(kRaw), 2u);
}

TEST(ConstBytesTest, ACharBufferIsSentWhole) {
  char buffer[8] = {};  // all NUL: still 8 bytes of data
  EXPECT_EQ(SizeOf(buffer), 8u);
  EXPECT_EQ(ConstBytes(buffer).data(), buffer);
}

TEST(ConstBytesTest, ContiguousRangesOfCharAreTakenAsTheyAre) {
  const std::string text("with\0nul", 8);
  EXPECT_EQ(SizeOf(text), 8u);
  EXPECT_EQ(ConstBytes(text).data(), text.data());
  EXPECT_EQ(SizeOf(std::string_view("view")), 4u);
  EXPECT_EQ(SizeOf(absl::string_view("absl")), 4u);
  EXPECT_EQ(SizeOf(std::vector<char>(5, 'x')), 5u);
  EXPECT_EQ(SizeOf(std::array<char, 3>{'a', 'b', 'c'}), 3u);
  std::vector<char> storage(10);
  EXPECT_EQ(SizeOf(std::span<const char>(storage.data(), 4)), 4u);
  EXPECT_EQ(SizeOf(std::span<char>(storage)), 10u);
  EXPECT_EQ(SizeOf(ConstBytes(storage.data(), 6)), 6u);
  EXPECT_TRUE(ConstBytes().empty());
  EXPECT_EQ(ConstBytes(text).span().size(), 8u);
}

}  // namespace
}  // namespace conet
