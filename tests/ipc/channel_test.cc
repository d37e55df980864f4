#include "ipc/channel.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::PipeReadEnds;
using ::conet::test::RawFds;
using ::conet::test::RunTask;
using ::testing::HasSubstr;

struct Ends {
  Channel a;
  Channel b;
};

Ends MakeChannels(ChannelOptions options = {}) {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair = SocketPair(SocketType::kSeqPacket);
  if (!pair.ok()) std::abort();
  return Ends{Channel(std::move(pair->first), options), Channel(std::move(pair->second), options)};
}

Task<std::vector<std::string>> Messages(size_t fd_count) {
  Ends ends = MakeChannels();
  std::vector<std::string> seen;
  std::vector<UniqueFd> fds = PipeReadEnds(fd_count);
  absl::Status sent = co_await ends.a.Send("payload", RawFds(fds));
  EXPECT_TRUE(sent.ok()) << sent;
  sent = co_await ends.a.Send("");  // an empty message is not EOF
  EXPECT_TRUE(sent.ok()) << sent;
  ends.a.socket().Close();
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Message> got = co_await ends.b.Receive();
    if (!got.ok()) {
      seen.push_back(IsEndOfChannel(got.status()) ? "<end>" : got.status().ToString());
      break;
    }
    seen.push_back(absl::StrCat("'", got->bytes, "' with ", got->fds.size()));
  }
  co_return seen;
}

TEST(ChannelTest, MessagesKeepTheirDescriptorsAndEmptyIsNotEnd) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(Messages(3)),
              ::testing::ElementsAre("'payload' with 3", "'' with 0", "<end>"));
}

TEST(ChannelTest, ManyDescriptorsAreSplitIntoFramesAndJoined) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(Messages(600)),
              ::testing::ElementsAre("'payload' with 600", "'' with 0", "<end>"));
}

Task<absl::Status> SendTooBig() {
  ChannelOptions options;
  options.max_message_bytes = 16;
  Ends ends = MakeChannels(options);
  co_return co_await ends.a.Send(std::string(17, 'x'));
}

TEST(ChannelTest, SendRefusesAMessageOverTheLimit) {
  absl::Status status = RunTask(SendTooBig());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
}

// A peer that does not use Channel sends what Channel would refuse; the
// receiver reports it, closes the descriptors, and keeps working.
Task<std::vector<std::string>> HostilePeer() {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair = SocketPair(SocketType::kSeqPacket);
  UnixSocket raw = std::move(pair->first);
  ChannelOptions options;
  options.max_message_bytes = 16;
  options.max_fds = 2;
  Channel channel(std::move(pair->second), options);
  {
    std::vector<UniqueFd> fds = PipeReadEnds(2);
    co_await raw.SendFds(std::string("M") + std::string(40, 'x'), RawFds(fds));  // too long
    co_await raw.SendFds(std::string("Mmany"), RawFds(PipeReadEnds(3)));         // too many fds
    co_await raw.SendFds(std::string("?bad header"), RawFds(fds));               // malformed
    co_await raw.Send(std::string("Mfine"));
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Message> got = co_await channel.Receive();
    seen.push_back(got.ok() ? got->bytes
                            : std::string(absl::StatusCodeToString(got.status().code())));
  }
  co_return seen;
}

TEST(ChannelTest, AHostilePeerGetsErrorsAndNothingLeaks) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(HostilePeer()),
              ::testing::ElementsAre("OUT_OF_RANGE", "RESOURCE_EXHAUSTED", "DATA_LOSS", "fine"));
}

// The first frame of a two-frame message is refused (too long); the rest of
// that message must not be taken for the next one.
Task<std::vector<std::string>> CutOffMessage() {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair = SocketPair(SocketType::kSeqPacket);
  UnixSocket raw = std::move(pair->first);
  ChannelOptions options;
  options.max_message_bytes = 16;
  Channel channel(std::move(pair->second), options);
  {
    std::vector<UniqueFd> fds = PipeReadEnds(2);
    co_await raw.SendFds(std::string("C") + std::string(40, 'x'), RawFds(fds));
    co_await raw.SendFds(std::string("M"), RawFds(fds));  // the rest of it
    co_await raw.Send(std::string("Mnext"));
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Message> got = co_await channel.Receive();
    seen.push_back(got.ok() ? absl::StrCat(got->bytes, " with ", got->fds.size())
                            : std::string(absl::StatusCodeToString(got.status().code())));
  }
  co_return seen;
}

TEST(ChannelTest, AfterAMessageFailsMidwayTheNextReceiveStartsAtTheNextMessage) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(CutOffMessage()), ::testing::ElementsAre("OUT_OF_RANGE", "next with 0"));
}

// Returns the bytes of a message, or the name of the error's code.
std::string BytesOrCode(const absl::StatusOr<Message>& got) {
  return got.ok() ? got->bytes : std::string(absl::StatusCodeToString(got.status().code()));
}

// The last frame of a two-frame message fails (too long): the message is
// over, so the next one must be delivered, not skipped as its remainder.
Task<std::vector<std::string>> LastFrameFails() {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair = SocketPair(SocketType::kSeqPacket);
  UnixSocket raw = std::move(pair->first);
  Channel channel(std::move(pair->second), {.max_message_bytes = 16});
  {
    std::vector<UniqueFd> fds = PipeReadEnds(1);
    co_await raw.SendFds(std::string("Cfirst"), RawFds(fds));
    co_await raw.SendFds(std::string("M") + std::string(40, 'x'), RawFds(fds));
    co_await raw.Send(std::string("Msecond"));
  }
  raw.Close();  // a skipped "second" then shows as the end of the channel
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) seen.push_back(BytesOrCode(co_await channel.Receive()));
  co_return seen;
}

TEST(ChannelTest, AMessageWhoseLastFrameFailsDoesNotSwallowTheNextOne) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(LastFrameFails()), ::testing::ElementsAre("OUT_OF_RANGE", "second"));
}

// An honest sender's 300-descriptor message (two frames) reaches a receiver
// with too few descriptors left for either frame: one error for that
// message, then the next message.
Task<std::vector<std::string>> ReceiverOutOfDescriptors() {
  Ends ends = MakeChannels();
  std::vector<UniqueFd> fds = PipeReadEnds(300);
  absl::Status sent = co_await ends.a.Send("first", RawFds(fds));
  EXPECT_TRUE(sent.ok()) << sent;
  sent = co_await ends.a.Send("second");
  EXPECT_TRUE(sent.ok()) << sent;
  ends.a.socket().Close();
  fds.clear();
  rlimit old;
  ::getrlimit(RLIMIT_NOFILE, &old);
  const std::set<int> open = ::conet::test::OpenFds();
  rlimit tight = old;
  tight.rlim_cur = static_cast<rlim_t>(*open.rbegin() + 20);  // room for 20, not 47
  ::setrlimit(RLIMIT_NOFILE, &tight);
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) seen.push_back(BytesOrCode(co_await ends.b.Receive()));
  ::setrlimit(RLIMIT_NOFILE, &old);
  co_return seen;
}

TEST(ChannelTest, ADescriptorShortageCostsOneMessageAndOneError) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(ReceiverOutOfDescriptors()),
              ::testing::ElementsAre("RESOURCE_EXHAUSTED", "second"));
}

// Answers each request with "re: " and its bytes; before answering "slow",
// stops `caller` (the Call awaiting that reply gives up first).
Task<void> AnswerAll(Channel* channel, std::stop_source* caller) {
  while (true) {
    absl::StatusOr<Message> request = co_await channel->Receive();
    if (!request.ok()) co_return;
    if (request->bytes == "slow") caller->request_stop();
    if (!(co_await channel->Send("re: " + request->bytes)).ok()) co_return;
  }
}

Task<std::vector<std::string>> CallAfterACancelledCall() {
  Ends ends = MakeChannels();
  std::stop_source stop;
  EventLoop::Current()->SpawnDetached(AnswerAll(&ends.b, &stop));
  std::vector<std::string> seen;
  seen.push_back(BytesOrCode(co_await ends.a.Call("slow", stop.get_token())));
  seen.push_back(BytesOrCode(co_await ends.a.Call("next")));
  seen.push_back(BytesOrCode(co_await ends.a.Call("last")));
  ends.a.socket().Close();
  co_return seen;
}

TEST(ChannelTest, ACancelledCallsReplyIsNotTakenForTheNextCall) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(CallAfterACancelledCall()),
              ::testing::ElementsAre("CANCELLED", "re: next", "re: last"));
}

Task<std::string> Serve(Channel* channel) {
  absl::StatusOr<Message> request = co_await channel->Receive();
  if (!request.ok()) co_return request.status().ToString();
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::Status sent = co_await channel->Send("re: " + request->bytes, RawFds(fds));
  co_return sent.ToString();
}

Task<std::string> CallAndAnswer() {
  Ends ends = MakeChannels();
  EventLoop::Current()->SpawnDetached([](Channel* c) -> Task<void> { co_await Serve(c); }(&ends.b));
  absl::StatusOr<Message> reply = co_await ends.a.Call("question");
  if (!reply.ok()) co_return reply.status().ToString();
  co_return absl::StrCat(reply->bytes, " with ", reply->fds.size());
}

TEST(ChannelTest, CallSendsARequestAndReceivesTheReply) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(CallAndAnswer()), "re: question with 1");
}

}  // namespace
}  // namespace conet::ipc
