#include "examples/file_server/http_request.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace conet::http {
namespace {

ParsedRequest Parse(const std::string& head) { return ParseRequest(head); }

TEST(FindHeadEndTest, FindsTheBlankLineOrAsksForMore) {
  EXPECT_EQ(*FindHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET"), 27u);
  EXPECT_EQ(*FindHeadEnd("GET / HTTP/1.1\r\nHost: a\r\n"), std::string_view::npos);
  EXPECT_EQ(*FindHeadEnd(""), std::string_view::npos);
}

TEST(FindHeadEndTest, ALongRequestLineIs414AndLongHeadersAre431) {
  const std::string line = "GET /" + std::string(kMaxHead, 'a');
  absl::StatusOr<size_t> end = FindHeadEnd(line);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(StatusOf(end.status()), 414);
  const std::string head = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHead, 'b');
  end = FindHeadEnd(head);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(StatusOf(end.status()), 431);
  // Exactly kMaxHead bytes with the blank line at the end is accepted.
  std::string exact = "GET / HTTP/1.1\r\nX: ";
  exact += std::string(kMaxHead - exact.size() - 4, 'c') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), kMaxHead);
  EXPECT_EQ(*FindHeadEnd(exact), kMaxHead);
}

TEST(ParseRequestTest, AGetWithHostIsServedAndKeptAlive) {
  ParsedRequest r = Parse("GET /index.html HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(r.error, 0) << r.reason;
  EXPECT_EQ(r.method, Method::kGet);
  EXPECT_EQ(r.path, "/index.html");
  EXPECT_EQ(r.minor_version, 1);
  EXPECT_TRUE(r.keep_alive);
  EXPECT_FALSE(r.range.has_value());
}

TEST(ParseRequestTest, HeadAndHttp10AndConnectionOptions) {
  ParsedRequest head = Parse("HEAD / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.error, 0) << head.reason;
  EXPECT_EQ(head.method, Method::kHead);
  EXPECT_FALSE(head.keep_alive);  // HTTP/1.0 closes unless it asks
  EXPECT_TRUE(Parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
  EXPECT_FALSE(Parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: x, close\r\n\r\n").keep_alive);
}

TEST(ParseRequestTest, PathsArePercentDecodedWithoutQueryOrDotSegments) {
  EXPECT_EQ(Parse("GET /a%20b/c.txt?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").path, "/a b/c.txt");
  EXPECT_EQ(Parse("GET /./a//b/ HTTP/1.1\r\nHost: a\r\n\r\n").path, "/a/b/");
  EXPECT_EQ(Parse("GET http://host:80/x HTTP/1.1\r\nHost: a\r\n\r\n").path, "/x");
  EXPECT_EQ(Parse("GET http://host HTTP/1.1\r\nHost: a\r\n\r\n").path, "/");
}

TEST(ParseRequestTest, TraversalNulAndBadEscapesAre400) {
  for (const char* target : {"/../etc/passwd", "/a/%2e%2e/b", "/%2E%2E/x", "/a%2f..%2fb", "/x%00y",
                             "/%zz", "/%4", "etc/passwd", "*"}) {
    ParsedRequest r = Parse(std::string("GET ") + target + " HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(r.error, 400) << target;
    EXPECT_FALSE(r.keep_alive) << target;
  }
}

TEST(ParseRequestTest, OtherMethodsAre405AndOtherVersions505) {
  EXPECT_EQ(Parse("POST / HTTP/1.1\r\nHost: a\r\n\r\n").error, 405);
  EXPECT_EQ(Parse("DELETE / HTTP/1.1\r\nHost: a\r\n\r\n").error, 405);
  EXPECT_EQ(Parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n").error, 505);
  EXPECT_EQ(Parse("GET / HTTP/1.2\r\nHost: a\r\n\r\n").error, 505);
  EXPECT_EQ(Parse("GET / HTTP/1\r\nHost: a\r\n\r\n").error, 400);
  EXPECT_EQ(Parse("GET / http/1.1\r\nHost: a\r\n\r\n").error, 400);
}

TEST(ParseRequestTest, MalformedHeadsAre400) {
  for (const char* head : {
           "GET /  HTTP/1.1\r\nHost: a\r\n\r\n",            // two spaces
           "GET / HTTP/1.1\r\n\r\n",                        // no Host
           "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  // two
           "GET / HTTP/1.1\r\nHost : a\r\n\r\n",            // space before the colon
           "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // obs-fold
           "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",       // a bare LF
           "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n",         // a control character
           "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
           "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\n",  // no blank line
       }) {
    EXPECT_EQ(Parse(head).error, 400) << head;
  }
}

TEST(ParseRequestTest, AContentLengthIsTheBodyToSkip) {
  ParsedRequest r = Parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n");
  EXPECT_EQ(r.error, 0) << r.reason;
  EXPECT_EQ(r.body_length, 12u);
}

TEST(ParseRequestTest, OneByteRangeIsTakenAndOthersIgnored) {
  auto range = [](const std::string& value) {
    return Parse("GET / HTTP/1.1\r\nHost: a\r\nRange: " + value + "\r\n\r\n").range;
  };
  ASSERT_TRUE(range("bytes=0-99").has_value());
  EXPECT_EQ(*range("bytes=0-99")->first, 0u);
  EXPECT_EQ(*range("bytes=0-99")->last, 99u);
  EXPECT_FALSE(range("bytes=5-")->last.has_value());
  EXPECT_FALSE(range("bytes=-5")->first.has_value());
  EXPECT_EQ(*range("bytes=-5")->last, 5u);
  for (const char* ignored : {"bytes=0-1,5-6", "items=0-1", "bytes=9-1", "bytes=x-1", "bytes=-",
                              "bytes=99999999999999999999-"}) {
    EXPECT_FALSE(range(ignored).has_value()) << ignored;
  }
}

TEST(ResolveTest, RangesAreClippedToTheFileOrUnsatisfiable) {
  auto resolve = [](std::optional<uint64_t> first, std::optional<uint64_t> last, uint64_t size) {
    return Resolve(RangeSpec{first, last}, size);
  };
  EXPECT_EQ(resolve(0, 99, 1000)->last, 99u);
  EXPECT_EQ(resolve(900, 5000, 1000)->last, 999u);
  EXPECT_EQ(resolve(10, std::nullopt, 1000)->first, 10u);
  EXPECT_EQ(resolve(std::nullopt, 100, 1000)->first, 900u);
  EXPECT_EQ(resolve(std::nullopt, 5000, 1000)->first, 0u);
  EXPECT_FALSE(resolve(1000, std::nullopt, 1000).has_value());
  EXPECT_FALSE(resolve(std::nullopt, 0, 1000).has_value());
  EXPECT_FALSE(resolve(0, std::nullopt, 0).has_value());
}

}  // namespace
}  // namespace conet::http
