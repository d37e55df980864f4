// The pieces of examples/kv_server: the RESP request parser, the store and
// the commands' replies (the program itself is tested end to end against
// redis-cli and redis-benchmark in tests/integration).
#include <string>
#include <string_view>
#include <vector>

#include "examples/kv/commands.h"
#include "examples/kv/resp.h"
#include "examples/kv/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> Args(const Request& request) {
  return {request.args.begin(), request.args.end()};
}

TEST(RespParserTest, ArrayOfBulkStrings) {
  Request request;
  const std::string input = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\nrest";
  ParseResult result = ParseRequest(input, &request);
  ASSERT_EQ(result.state, ParseState::kComplete);
  EXPECT_EQ(result.consumed, input.size() - 4);
  EXPECT_THAT(Args(request), ElementsAre("SET", "k", "value"));
}

TEST(RespParserTest, EveryPrefixOfARequestIsIncomplete) {
  using std::string_literals::operator""s;
  const std::string input = "*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n"s;
  Request request;
  for (size_t size = 0; size < input.size(); ++size) {
    EXPECT_EQ(ParseRequest(std::string_view(input).substr(0, size), &request).state,
              ParseState::kIncomplete)
        << size;
  }
  ASSERT_EQ(ParseRequest(input, &request).state, ParseState::kComplete);
  EXPECT_EQ(request.args[1], std::string_view("a\0b", 3));  // binary-safe
}

TEST(RespParserTest, ALargeValueSaysHowManyBytesItNeeds) {
  Request request;
  ParseResult result = ParseRequest("*2\r\n$3\r\nGET\r\n$4194304\r\nab", &request);
  EXPECT_EQ(result.state, ParseState::kIncomplete);
  EXPECT_EQ(result.needed, 23u + 4194304 + 2);  // header lines, value, CRLF
}

TEST(RespParserTest, InlineCommandsSplitOnSpacesWithQuotes) {
  Request request;
  ParseResult result = ParseRequest("set  k \"a b\\x41\\n\" 'it\\'s'\r\nPING\n", &request);
  ASSERT_EQ(result.state, ParseState::kComplete);
  EXPECT_THAT(Args(request), ElementsAre("set", "k", "a bA\n", "it's"));
  EXPECT_EQ(ParseRequest("\r\n", &request).state, ParseState::kComplete);
  EXPECT_TRUE(request.args.empty());  // an empty line is no request
  EXPECT_EQ(ParseRequest("PING", &request).state, ParseState::kIncomplete);
}

TEST(RespParserTest, AnIncompleteArrayResumesWhereItStopped) {
  Request request;
  const std::string first = "*3\r\n$1\r\na\r\n$1\r\nb";
  EXPECT_EQ(ParseRequest(first, &request).state, ParseState::kIncomplete);
  // What was parsed is not read again: spoil it, and the request still
  // completes from the third element on.
  std::string more = first + "\r\n$1\r\nc\r\n";
  more[5] = '#';
  ParseResult result = ParseRequest(more, &request);
  ASSERT_EQ(result.state, ParseState::kComplete);
  EXPECT_EQ(result.consumed, more.size());
  EXPECT_THAT(Args(request), ElementsAre("a", "b", "c"));
  // And the next request starts afresh.
  EXPECT_EQ(ParseRequest("*1\r\n$4\r\nPING\r\n", &request).state, ParseState::kComplete);
  EXPECT_THAT(Args(request), ElementsAre("PING"));
}

TEST(RespParserTest, InlineSplittingIsRedisSdssplitargs) {
  Request request;
  ASSERT_EQ(ParseRequest("SET a foo\"bar\"\r\n", &request).state, ParseState::kComplete);
  EXPECT_THAT(Args(request), ElementsAre("SET", "a", "foobar"));  // a quote inside a word
  ASSERT_EQ(ParseRequest("SET a b\vc\r\n", &request).state, ParseState::kComplete);
  EXPECT_THAT(Args(request), ElementsAre("SET", "a", "b\vc"));  // \v does not split
  ASSERT_EQ(ParseRequest("ECHO \"\"\r\n", &request).state, ParseState::kComplete);
  EXPECT_THAT(Args(request), ElementsAre("ECHO", ""));
  EXPECT_EQ(ParseRequest("SET a it's\r\n", &request).state, ParseState::kError);
  EXPECT_EQ(ParseRequest("SET a \"x\"y\r\n", &request).state, ParseState::kError);
}

TEST(RespParserTest, EmptyAndNullArraysAreNoRequest) {
  Request request;
  ParseResult result = ParseRequest("*0\r\n*-1\r\n", &request);
  ASSERT_EQ(result.state, ParseState::kComplete);
  EXPECT_EQ(result.consumed, 4u);
  EXPECT_TRUE(request.args.empty());
}

std::string ErrorFor(std::string_view input) {
  Request request;
  ParseResult result = ParseRequest(input, &request);
  EXPECT_EQ(result.state, ParseState::kError) << input;
  return result.error;
}

TEST(RespParserTest, MalformedRequestsAreProtocolErrorsInRedisWords) {
  EXPECT_EQ(ErrorFor("*x\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorFor("*3000000000\r\n"), "Protocol error: invalid multibulk length");
  EXPECT_EQ(ErrorFor("*1\r\n:3\r\n"), "Protocol error: expected '$', got ':'");
  EXPECT_EQ(ErrorFor("*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorFor("*1\r\n$536870913\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorFor("*1\r\n$01\r\n"), "Protocol error: invalid bulk length");
  EXPECT_EQ(ErrorFor("SET \"k v\r\n"), "Protocol error: unbalanced quotes in request");
  EXPECT_EQ(ErrorFor(std::string(70000, 'a')), "Protocol error: too big inline request");
  EXPECT_EQ(ErrorFor("*" + std::string(70000, '1')), "Protocol error: too big mbulk count string");
  EXPECT_EQ(ErrorFor("*1\r\n$" + std::string(70000, '1')),
            "Protocol error: too big bulk count string");
}

TEST(RespParserTest, Int64AsRedisParsesIt) {
  int64_t value = 0;
  EXPECT_TRUE(ParseInt64("-9223372036854775808", &value));
  EXPECT_EQ(value, INT64_MIN);
  EXPECT_TRUE(ParseInt64("9223372036854775807", &value));
  EXPECT_FALSE(ParseInt64("9223372036854775808", &value));
  EXPECT_FALSE(ParseInt64("+1", &value));
  EXPECT_FALSE(ParseInt64(" 1", &value));
  EXPECT_FALSE(ParseInt64("01", &value));
  EXPECT_FALSE(ParseInt64("-0", &value));
  EXPECT_FALSE(ParseInt64("", &value));
}

// Runs one command line (split on spaces) and returns its reply.
class CommandsTest : public ::testing::Test {
 protected:
  std::string Run(std::vector<std::string_view> args, int64_t now_ms = 1000) {
    std::string out;
    last_outcome_ = Execute(args, store_, now_ms, &out);
    return out;
  }
  Store store_;
  Outcome last_outcome_ = Outcome::kContinue;
};

TEST_F(CommandsTest, PingEchoAndQuit) {
  EXPECT_EQ(Run({"PING"}), "+PONG\r\n");
  EXPECT_EQ(Run({"ping", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(Run({"PING", "a", "b"}), "-ERR wrong number of arguments for 'ping' command\r\n");
  EXPECT_EQ(Run({"ECHO", ""}), "$0\r\n\r\n");
  EXPECT_EQ(Run({"QUIT"}), "+OK\r\n");
  EXPECT_EQ(last_outcome_, Outcome::kClose);
}

TEST_F(CommandsTest, SetGetDelExists) {
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(Run({"EXISTS", "k", "k", "nope"}), ":2\r\n");
  EXPECT_EQ(Run({"DEL", "k", "k"}), ":1\r\n");
  EXPECT_EQ(Run({"GET", "k"}), "$-1\r\n");
  EXPECT_EQ(Run({"GET"}), "-ERR wrong number of arguments for 'get' command\r\n");
  EXPECT_EQ(Run({"DEL"}), "-ERR wrong number of arguments for 'del' command\r\n");
}

TEST_F(CommandsTest, SetConditionsAndExpiry) {
  EXPECT_EQ(Run({"SET", "k", "1", "XX"}), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "1", "NX", "PX", "500"}, 1000), "+OK\r\n");
  EXPECT_EQ(Run({"SET", "k", "2", "nx"}, 1000), "$-1\r\n");
  EXPECT_EQ(Run({"GET", "k"}, 1500), "$1\r\n1\r\n");  // as Redis: gone once now > 1500
  EXPECT_EQ(Run({"GET", "k"}, 1501), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "3", "EX", "2"}, 2000), "+OK\r\n");
  EXPECT_EQ(Run({"EXISTS", "k"}, 4000), ":1\r\n");
  EXPECT_EQ(Run({"EXISTS", "k"}, 4001), ":0\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "0"}), "-ERR invalid expire time in 'set' command\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "x"}), "-ERR value is not an integer or out of range\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "NX", "XX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "1", "PX", "1"}), "-ERR syntax error\r\n");
  // As Redis 7.0: the syntax is checked first, an option may come twice.
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "abc", "BOGUS"}), "-ERR syntax error\r\n");
  EXPECT_EQ(Run({"SET", "n2", "v", "NX", "NX"}), "+OK\r\n");
  EXPECT_EQ(Run({"SET", "n2", "w", "PX", "10", "PX", "5000"}, 1000), "+OK\r\n");
  EXPECT_EQ(Run({"GET", "n2"}, 5999), "$1\r\nw\r\n");  // the last PX counts
  EXPECT_EQ(Run({"GET", "n2"}, 6001), "$-1\r\n");
  EXPECT_EQ(Run({"SET", "k", "v", "EX", "9223372036854775807"}),
            "-ERR invalid expire time in 'set' command\r\n");
}

TEST_F(CommandsTest, SweepDropsExpiredKeys) {
  Store store(1);
  store.Set("a", "1", 10, SetCondition::kAlways, 0);
  store.Set("b", "2", kNoExpiry, SetCondition::kAlways, 0);
  EXPECT_EQ(store.SweepExpired(5), 0u);
  EXPECT_EQ(store.SweepExpired(10), 0u);  // live through its last millisecond
  EXPECT_EQ(store.SweepExpired(11), 1u);
  EXPECT_EQ(store.Size(), 1u);
}

TEST_F(CommandsTest, Incr) {
  EXPECT_EQ(Run({"INCR", "n"}), ":1\r\n");
  EXPECT_EQ(Run({"INCR", "n"}), ":2\r\n");
  EXPECT_EQ(Run({"GET", "n"}), "$1\r\n2\r\n");
  Run({"SET", "s", "abc"});
  EXPECT_EQ(Run({"INCR", "s"}), "-ERR value is not an integer or out of range\r\n");
  Run({"SET", "max", "9223372036854775807"});
  EXPECT_EQ(Run({"INCR", "max"}), "-ERR increment or decrement would overflow\r\n");
}

TEST_F(CommandsTest, UnknownCommandsAndWhatClientsAskAtStart) {
  EXPECT_EQ(Run({"FLUSHALL", "a", "b"}),
            "-ERR unknown command 'FLUSHALL', with args beginning with: 'a' 'b' \r\n");
  // A peer's line breaks do not split the reply.
  EXPECT_THAT(Run({"x\r\n+OK"}), HasSubstr("'x  +OK'"));
  EXPECT_EQ(Run({"COMMAND", "DOCS"}), "*0\r\n");
  // A browser's request is closed unanswered.
  EXPECT_EQ(Run({"POST", "/", "HTTP/1.1"}), "");
  EXPECT_EQ(last_outcome_, Outcome::kCloseSilently);
  EXPECT_EQ(Run({"Host:", "127.0.0.1"}), "");
  EXPECT_EQ(last_outcome_, Outcome::kCloseSilently);
  EXPECT_EQ(Run({"CONFIG", "GET", "save"}), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
  EXPECT_EQ(Run({"CONFIG", "GET", "appendonly"}), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
  EXPECT_EQ(Run({"CONFIG", "GET", "maxmemory"}), "*0\r\n");
}

}  // namespace
}  // namespace kv
