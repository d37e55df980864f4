#include "examples/file_server/http_response.h"

#include <string>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/examples/response_field.h"

namespace conet::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string BodyOf(const std::string& response) {
  return response.substr(response.find("\r\n\r\n") + 4);
}

TEST(HttpResponseTest, DatesAreImfFixdate) {
  // RFC 9110's own example.
  EXPECT_EQ(HttpDate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(HttpResponseTest, ContentTypesComeFromTheExtension) {
  EXPECT_EQ(ContentTypeFor("/a/index.HTML"), "text/html; charset=utf-8");
  EXPECT_EQ(ContentTypeFor("/logo.png"), "image/png");
  EXPECT_EQ(ContentTypeFor("/archive.tar.gz"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("/dir.html/README"), "application/octet-stream");
  EXPECT_EQ(ContentTypeFor("/trailing."), "application/octet-stream");
}

TEST(HttpResponseTest, AFileHeadCarriesLengthTypeAndDates) {
  std::string out;
  AppendFileHead({.path = "/x.css", .size = 4096, .modified = 784111777, .now = 784111778}, out);
  EXPECT_THAT(out, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ(FieldOf(out, "Content-Length"), "4096");
  EXPECT_EQ(FieldOf(out, "Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(FieldOf(out, "Last-Modified"), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(FieldOf(out, "Date"), "Sun, 06 Nov 1994 08:49:38 GMT");
  EXPECT_EQ(FieldOf(out, "Connection"), "");
  EXPECT_EQ(BodyOf(out), "");  // the body follows from the file
}

TEST(HttpResponseTest, ARangeIs206WithItsContentRange) {
  std::string out;
  AppendFileHead({.path = "/f", .size = 1000, .range = ByteRange{100, 199}}, out);
  EXPECT_THAT(out, StartsWith("HTTP/1.1 206 Partial Content\r\n"));
  EXPECT_EQ(FieldOf(out, "Content-Range"), "bytes 100-199/1000");
  EXPECT_EQ(FieldOf(out, "Content-Length"), "100");
}

TEST(HttpResponseTest, ConnectionSaysWhatDiffersFromTheVersionsDefault) {
  std::string close11;
  AppendFileHead({.minor_version = 1, .keep_alive = false, .path = "/f"}, close11);
  EXPECT_EQ(FieldOf(close11, "Connection"), "close");
  std::string alive10;
  AppendFileHead({.minor_version = 0, .keep_alive = true, .path = "/f"}, alive10);
  EXPECT_THAT(alive10, StartsWith("HTTP/1.0 200 OK\r\n"));
  EXPECT_EQ(FieldOf(alive10, "Connection"), "keep-alive");
}

TEST(HttpResponseTest, ErrorsHaveTheirFieldsAndABodyOfTheirLength) {
  std::string out;
  AppendError(405, 1, false, false, 0, 0, out);
  EXPECT_THAT(out, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_EQ(FieldOf(out, "Allow"), "GET, HEAD");
  EXPECT_EQ(FieldOf(out, "Connection"), "close");
  size_t length = 0;
  ASSERT_TRUE(absl::SimpleAtoi(FieldOf(out, "Content-Length"), &length));
  EXPECT_EQ(BodyOf(out).size(), length);
  std::string range;
  AppendError(416, 1, true, false, 0, 1234, range);
  EXPECT_EQ(FieldOf(range, "Content-Range"), "bytes */1234");
  std::string head;
  AppendError(404, 1, true, /*head_only=*/true, 0, 0, head);
  EXPECT_THAT(head, StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_NE(FieldOf(head, "Content-Length"), "0");  // what a GET would have had
  EXPECT_EQ(BodyOf(head), "");
  EXPECT_THAT(head, Not(HasSubstr("Allow:")));
  for (int status : {400, 408, 414, 431, 505}) {
    std::string other;
    AppendError(status, 1, false, false, 0, 0, other);
    EXPECT_THAT(other, Not(HasSubstr("Unknown"))) << status;
  }
}

}  // namespace
}  // namespace conet::http
