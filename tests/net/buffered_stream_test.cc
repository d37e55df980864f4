#include "net/buffered_stream.h"

#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/testing.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::testing::HasSubstr;

// A stream that hands out scripted chunks, one per read, then ends; and
// records each write.
class ScriptedStream {
 public:
  explicit ScriptedStream(std::vector<std::string> chunks)
      : chunks_(chunks.begin(), chunks.end()) {}

  Task<absl::StatusOr<size_t>> ReadSome(std::span<char> buffer, const Cancellation&) {
    ++reads_;
    if (chunks_.empty()) co_return 0;
    std::string& chunk = chunks_.front();
    const size_t count = std::min(chunk.size(), buffer.size());
    chunk.copy(buffer.data(), count);
    chunk.erase(0, count);
    if (chunk.empty()) chunks_.pop_front();
    co_return count;
  }
  Task<absl::StatusOr<size_t>> WriteAll(ConstBytes data, const Cancellation&) {
    writes_.emplace_back(data.data(), data.size());
    co_return data.size();
  }

  int reads() const { return reads_; }
  const std::vector<std::string>& writes() const { return writes_; }

 private:
  std::deque<std::string> chunks_;
  std::vector<std::string> writes_;
  int reads_ = 0;
};

TEST(BufferedReaderTest, ReadsLinesSplitAnywhereAndKeepsWhatFollows) {
  ScriptedStream stream({"fir", "st\r", "\nsec", "ond\nthi", "rd"});
  BufferedReader reader(stream);
  std::vector<std::string> lines;
  auto read_all = [&]() -> Task<absl::Status> {
    while (true) {
      absl::StatusOr<std::string_view> line = co_await reader.ReadLine(64);
      if (!line.ok()) co_return line.status();
      lines.emplace_back(*line);
    }
  };
  absl::Status end = RunTask(read_all());
  EXPECT_THAT(lines, ::testing::ElementsAre("first", "second"));
  // "third" had no line ending: the stream ended in the middle of an item.
  EXPECT_EQ(end.code(), absl::StatusCode::kDataLoss) << end;
  EXPECT_THAT(end.message(), HasSubstr("5 bytes"));
  EXPECT_FALSE(IsEndOfStream(end));
}

TEST(BufferedReaderTest, CleanEndBetweenItemsIsEndOfStream) {
  ScriptedStream stream({"one\n"});
  BufferedReader reader(stream);
  auto read_two = [&]() -> Task<absl::Status> {
    absl::StatusOr<std::string_view> line = co_await reader.ReadLine(64);
    if (!line.ok()) co_return line.status();
    EXPECT_EQ(*line, "one");
    absl::StatusOr<std::string_view> next = co_await reader.ReadLine(64);
    co_return next.status();
  };
  absl::Status end = RunTask(read_two());
  EXPECT_TRUE(IsEndOfStream(end)) << end;
}

TEST(BufferedReaderTest, LineOverTheMaximumIsResourceExhausted) {
  ScriptedStream stream({"abcdef", "ghij\n"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<absl::StatusOr<std::string_view>> {
    co_return co_await reader.ReadLine(8);
  };
  absl::StatusOr<std::string_view> line = RunTask(read());
  EXPECT_EQ(line.status().code(), absl::StatusCode::kResourceExhausted) << line.status();
  EXPECT_THAT(line.status().message(), HasSubstr("longer than 8 bytes"));
}

TEST(BufferedReaderTest, ALineOverTheMaximumStaysBuffered) {
  ScriptedStream stream({"123456789\n"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<void> {
    absl::StatusOr<std::string_view> over = co_await reader.ReadLine(8);
    EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
    EXPECT_EQ(reader.buffered(), "123456789\n");  // nothing consumed
    absl::StatusOr<std::string_view> fits = co_await reader.ReadLine(9);
    CONET_CO_ASSERT_OK(fits);
    EXPECT_EQ(*fits, "123456789");
    absl::StatusOr<std::string_view> any = co_await reader.ReadLine(SIZE_MAX);
    EXPECT_TRUE(IsEndOfStream(any.status())) << any.status();  // no overflow in the limit
  };
  RunTask(read());
}

TEST(BufferedReaderTest, LineOfExactlyTheMaximumWithCrLfFits) {
  ScriptedStream stream({"12345678\r\n", "123456789\n"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<void> {
    absl::StatusOr<std::string_view> fits = co_await reader.ReadLine(8);
    CONET_CO_ASSERT_OK(fits);
    EXPECT_EQ(*fits, "12345678");
    absl::StatusOr<std::string_view> over = co_await reader.ReadLine(8);
    EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  };
  RunTask(read());
}

TEST(BufferedReaderTest, ReadUntilAMultiByteDelimiterSplitAcrossReads) {
  ScriptedStream stream({"key=va", "lue;", ";", "rest"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<void> {
    absl::StatusOr<std::string_view> item = co_await reader.ReadUntil(";;", 16);
    CONET_CO_ASSERT_OK(item);
    EXPECT_EQ(*item, "key=value");
    absl::StatusOr<std::string_view> rest = co_await reader.ReadExact(4);
    CONET_CO_ASSERT_OK(rest);
    EXPECT_EQ(*rest, "rest");
  };
  RunTask(read());
}

TEST(BufferedReaderTest, ReadExactGrowsPastTheInitialCapacity) {
  const std::string big(1 << 20, 'x');
  std::vector<std::string> chunks;
  for (size_t at = 0; at < big.size(); at += 3000) chunks.push_back(big.substr(at, 3000));
  chunks.push_back("tail");
  ScriptedStream stream(chunks);
  BufferedReader reader(stream, 64);
  auto read = [&]() -> Task<void> {
    absl::StatusOr<std::string_view> body = co_await reader.ReadExact(big.size());
    CONET_CO_ASSERT_OK(body);
    EXPECT_TRUE(*body == big);
    absl::StatusOr<std::string_view> tail = co_await reader.ReadExact(4);
    CONET_CO_ASSERT_OK(tail);
    EXPECT_EQ(*tail, "tail");
  };
  RunTask(read());
}

TEST(BufferedReaderTest, ReadExactShortOfTheCountIsDataLoss) {
  ScriptedStream stream({"abc"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<absl::StatusOr<std::string_view>> {
    co_return co_await reader.ReadExact(10);
  };
  absl::StatusOr<std::string_view> body = RunTask(read());
  EXPECT_EQ(body.status().code(), absl::StatusCode::kDataLoss) << body.status();
  EXPECT_THAT(body.status().message(), HasSubstr("3 bytes"));
}

TEST(BufferedReaderTest, PeekLeavesTheBytesForTheNextRead) {
  ScriptedStream stream({"*", "3\r\nabc"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<void> {
    absl::StatusOr<std::string_view> first = co_await reader.Peek(2);
    CONET_CO_ASSERT_OK(first);
    EXPECT_EQ(*first, "*3");
    absl::StatusOr<std::string_view> line = co_await reader.ReadLine(16);
    CONET_CO_ASSERT_OK(line);
    EXPECT_EQ(*line, "*3");
    char out[16];
    absl::StatusOr<size_t> some = co_await reader.ReadSome(out);
    CONET_CO_ASSERT_OK(some);
    EXPECT_EQ(std::string_view(out, *some), "abc");
  };
  RunTask(read());
}

TEST(BufferedReaderTest, ReadMoreAppendsForParsersThatLookThemselves) {
  ScriptedStream stream({"ab", "cd"});
  BufferedReader reader(stream);
  auto read = [&]() -> Task<void> {
    CONET_CO_ASSERT_OK(co_await reader.ReadMore());
    CONET_CO_ASSERT_OK(co_await reader.ReadMore());
    EXPECT_EQ(reader.buffered(), "abcd");
    reader.Consume(3);
    EXPECT_EQ(reader.buffered(), "d");
    absl::StatusOr<size_t> end = co_await reader.ReadMore();
    CONET_CO_ASSERT_OK(end);
    EXPECT_EQ(*end, 0u);
  };
  RunTask(read());
}

TEST(BufferedWriterTest, AppendedRepliesLeaveInOneWrite) {
  ScriptedStream stream({});
  BufferedWriter writer(stream);
  auto write = [&]() -> Task<void> {
    for (int i = 0; i < 16; ++i) writer.Append("+OK\r\n");
    CONET_CO_ASSERT_OK(co_await writer.Flush());
    CONET_CO_ASSERT_OK(co_await writer.Flush());  // nothing pending: no write
  };
  RunTask(write());
  ASSERT_EQ(stream.writes().size(), 1u);
  EXPECT_EQ(stream.writes()[0].size(), 16u * 5);
}

// Over a real TCP connection: pipelined lines arrive in one segment and are
// read one at a time, and the writer's batch arrives whole.
TEST(BufferedStreamTest, OverTcpLoopback) {
  FdLeakCheck leaks;
  auto run = []() -> Task<void> {
    absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
    CONET_CO_ASSERT_OK(any);
    CONET_CO_ASSERT_OK_AND_ASSIGN(StreamListener listener, StreamListener::Bind(*any));
    auto [client, server] =
        co_await WhenAll(StreamSocket::Connect(listener.address()), listener.Accept());
    CONET_CO_ASSERT_OK(client);
    CONET_CO_ASSERT_OK(server);
    BufferedWriter writer(*client);
    for (int i = 0; i < 100; ++i) writer.Append("PING\r\n");
    CONET_CO_ASSERT_OK(co_await writer.Flush());
    CONET_CO_ASSERT_OK(client->ShutdownWrite());
    BufferedReader reader(*server);
    int pings = 0;
    while (true) {
      absl::StatusOr<std::string_view> line = co_await reader.ReadLine(16);
      if (IsEndOfStream(line.status())) break;
      CONET_CO_ASSERT_OK(line);
      EXPECT_EQ(*line, "PING");
      ++pings;
    }
    EXPECT_EQ(pings, 100);
  };
  RunTask(run());
}

}  // namespace
}  // namespace conet
