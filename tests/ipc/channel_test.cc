// Tests for Channel (ipc/channel.h): whole messages with descriptors, the
// limits, and Calls in flight matched to their replies.
#include "ipc/channel.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <set>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/task_group.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::PipeReadEnds;
using ::conet::test::RawFds;
using ::conet::test::RunTask;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Returns a connected seqpacket pair (aborts if there is none).
std::pair<UnixSocket, UnixSocket> SeqPacketPair() {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair = SocketPair(SocketType::kSeqPacket);
  if (!pair.ok()) std::abort();
  return *std::move(pair);
}

struct Ends {
  Channel a;
  Channel b;
};

Ends MakeChannels(ChannelOptions options = {}) {
  auto [a, b] = SeqPacketPair();
  return Ends{Channel(std::move(a), options), Channel(std::move(b), options)};
}

// A raw seqpacket socket on one side, to write frames a Channel would not.
struct RawPeer {
  UnixSocket raw;
  Channel channel;
};

RawPeer MakeRawPeer(ChannelOptions options = {}) {
  auto [raw, other] = SeqPacketPair();
  return RawPeer{std::move(raw), Channel(std::move(other), options)};
}

// The first frame of a message as the wire has it: 'M' (last) or 'C', the
// kind ('S', 'Q', 'R'), the id (little-endian), the payload.
std::string FirstFrame(char more, char kind, uint64_t id, const std::string& payload) {
  std::string frame = {more, kind};
  for (int i = 0; i < 8; ++i) frame.push_back(static_cast<char>((id >> (8 * i)) & 0xff));
  return frame + payload;
}

// A message from Send, in one frame.
std::string PlainFrame(const std::string& payload) { return FirstFrame('M', 'S', 0, payload); }

// Returns the id in a request's first frame.
uint64_t IdOf(const char* frame) {
  uint64_t id = 0;
  for (int i = 7; i >= 0; --i) id = (id << 8) | static_cast<unsigned char>(frame[2 + i]);
  return id;
}

// Returns the bytes of a message, or the name of the error's code.
std::string BytesOrCode(const absl::StatusOr<Message>& got) {
  return got.ok() ? got->bytes : std::string(absl::StatusCodeToString(got.status().code()));
}

// Returns "BYTES with N", or the name of the error's code.
std::string Described(const absl::StatusOr<Message>& got) {
  return got.ok() ? absl::StrCat(got->bytes, " with ", got->fds.size()) : BytesOrCode(got);
}

// --- Messages --------------------------------------------------------------

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
    EXPECT_EQ(got->request_id, 0u);
    seen.push_back(absl::StrCat("'", got->bytes, "' with ", got->fds.size()));
  }
  co_return seen;
}

TEST(ChannelTest, MessagesKeepTheirDescriptorsAndEmptyIsNotEnd) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(Messages(3)), ElementsAre("'payload' with 3", "'' with 0", "<end>"));
}

TEST(ChannelTest, ManyDescriptorsAreSplitIntoFramesAndJoined) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(Messages(600)), ElementsAre("'payload' with 600", "'' with 0", "<end>"));
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
  ChannelOptions options;
  options.max_message_bytes = 16;
  options.max_fds = 2;
  RawPeer peer = MakeRawPeer(options);
  {
    std::vector<UniqueFd> fds = PipeReadEnds(2);
    co_await peer.raw.SendFds(PlainFrame(std::string(40, 'x')), RawFds(fds));  // too long
    co_await peer.raw.SendFds(PlainFrame("many"), RawFds(PipeReadEnds(3)));    // too many fds
    co_await peer.raw.SendFds(std::string("?bad header"), RawFds(fds));        // malformed
    co_await peer.raw.SendFds(FirstFrame('M', '?', 0, "bad kind"), RawFds(fds));
    co_await peer.raw.Send(FirstFrame('M', 'S', 7, "with an id"));
    co_await peer.raw.Send(std::string("Mshort"));  // shorter than a first frame's header
    co_await peer.raw.Send(PlainFrame("fine"));
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 7; ++i) seen.push_back(BytesOrCode(co_await peer.channel.Receive()));
  co_return seen;
}

TEST(ChannelTest, AHostilePeerGetsErrorsAndNothingLeaks) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(HostilePeer()), ElementsAre("OUT_OF_RANGE", "RESOURCE_EXHAUSTED", "DATA_LOSS",
                                                  "DATA_LOSS", "DATA_LOSS", "DATA_LOSS", "fine"));
}

// The first frame of a two-frame message is refused (too long); the rest of
// that message must not be taken for the next one.
Task<std::vector<std::string>> CutOffMessage() {
  ChannelOptions options;
  options.max_message_bytes = 16;
  RawPeer peer = MakeRawPeer(options);
  {
    std::vector<UniqueFd> fds = PipeReadEnds(2);
    co_await peer.raw.SendFds(FirstFrame('C', 'S', 0, std::string(40, 'x')), RawFds(fds));
    co_await peer.raw.SendFds(std::string("M"), RawFds(fds));  // the rest of it
    co_await peer.raw.Send(PlainFrame("next"));
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) seen.push_back(Described(co_await peer.channel.Receive()));
  co_return seen;
}

TEST(ChannelTest, AfterAMessageFailsMidwayTheNextReceiveStartsAtTheNextMessage) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(CutOffMessage()), ElementsAre("OUT_OF_RANGE", "next with 0"));
}

// The last frame of a two-frame message fails (too long): the message is
// over, so the next one must be delivered, not skipped as its remainder.
Task<std::vector<std::string>> LastFrameFails() {
  RawPeer peer = MakeRawPeer({.max_message_bytes = 16});
  {
    std::vector<UniqueFd> fds = PipeReadEnds(1);
    co_await peer.raw.SendFds(FirstFrame('C', 'S', 0, "first"), RawFds(fds));
    co_await peer.raw.SendFds(std::string("M") + std::string(40, 'x'), RawFds(fds));
    co_await peer.raw.Send(PlainFrame("second"));
  }
  peer.raw.Close();  // a skipped "second" then shows as the end of the channel
  std::vector<std::string> seen;
  for (int i = 0; i < 2; ++i) seen.push_back(BytesOrCode(co_await peer.channel.Receive()));
  co_return seen;
}

TEST(ChannelTest, AMessageWhoseLastFrameFailsDoesNotSwallowTheNextOne) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(LastFrameFails()), ElementsAre("OUT_OF_RANGE", "second"));
}

// A Receive gives up after the first of a message's two frames; the next
// one goes on with that message.
Task<std::vector<std::string>> GiveUpMidway() {
  RawPeer peer = MakeRawPeer();
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::StatusOr<size_t> sent =
      co_await peer.raw.SendFds(FirstFrame('C', 'S', 0, "split"), RawFds(fds));
  CONET_EXPECT_OK(sent);
  std::vector<std::string> seen;
  seen.push_back(Described(co_await peer.channel.Receive(Within(absl::Milliseconds(20)))));
  sent = co_await peer.raw.SendFds(std::string("M"), RawFds(fds));
  CONET_EXPECT_OK(sent);
  seen.push_back(Described(co_await peer.channel.Receive()));
  co_return seen;
}

TEST(ChannelTest, AReceiveThatGivesUpMidwayLeavesTheMessageToTheNext) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(GiveUpMidway()), ElementsAre("DEADLINE_EXCEEDED", "split with 2"));
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
  EXPECT_THAT(RunTask(ReceiverOutOfDescriptors()), ElementsAre("RESOURCE_EXHAUSTED", "second"));
}

Task<absl::Status> SendAfterAPass(Channel* channel, std::string bytes) {
  co_await Yield();
  co_return co_await channel->Send(std::move(bytes));
}

Task<std::vector<std::string>> TwoReceivesAtOnce() {
  Ends ends = MakeChannels();
  auto [first, second, sent] =
      co_await WhenAll(ends.a.Receive(Within(absl::Seconds(10))),
                       ends.a.Receive(Within(absl::Seconds(10))), SendAfterAPass(&ends.b, "only"));
  CONET_EXPECT_OK(sent);
  co_return std::vector<std::string>{BytesOrCode(first), BytesOrCode(second)};
}

TEST(ChannelTest, OneReceiveAtATime) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(TwoReceivesAtOnce()), ElementsAre("only", "FAILED_PRECONDITION"));
}

// --- Calls -----------------------------------------------------------------

// Receives `order.size()` requests, runs `before_replies`, then answers them
// ("re: " and the request's bytes, and as many descriptors as it carried)
// in `order` (indexes into the requests as they came).
Task<void> AnswerBatch(Channel* channel, std::vector<size_t> order,
                       std::function<void()> before_replies) {
  std::vector<Message> requests;
  while (requests.size() < order.size()) {
    absl::StatusOr<Message> request = co_await channel->Receive();
    CONET_CO_ASSERT_OK(request);
    EXPECT_NE(request->request_id, 0u);
    requests.push_back(std::move(*request));
  }
  if (before_replies) before_replies();
  for (size_t index : order) {
    const Message& request = requests[index];
    CONET_CO_ASSERT_OK(
        co_await channel->Reply(request, "re: " + request.bytes, RawFds(request.fds)));
  }
}

// Answers every request at once until the channel ends.
Task<void> AnswerAll(Channel* channel) {
  while (true) {
    absl::StatusOr<Message> request = co_await channel->Receive();
    if (!request.ok()) co_return;
    if (!(co_await channel->Reply(*request, "re: " + request->bytes)).ok()) co_return;
  }
}

Task<std::vector<std::string>> OutOfOrderReplies() {
  Ends ends = MakeChannels();
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(AnswerBatch(&ends.b, {2, 0, 3, 1}, nullptr));
  auto [a, b, c, d] =
      co_await WhenAll(ends.a.Call("a"), ends.a.Call("b"), ends.a.Call("c"), ends.a.Call("d"));
  co_return std::vector<std::string>{BytesOrCode(a), BytesOrCode(b), BytesOrCode(c),
                                     BytesOrCode(d)};
}

TEST(ChannelCallTest, CallsInFlightEachGetTheirOwnReplyInAnyOrder) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(OutOfOrderReplies()), ElementsAre("re: a", "re: b", "re: c", "re: d"));
}

Task<std::vector<std::string>> OneOfSeveralCancelled() {
  Ends ends = MakeChannels();
  TaskGroup peers;  // declared after the channels, so it goes first
  std::stop_source stop;
  // The first Call reads the socket for the others; cancelling it hands
  // the reading on. Its reply comes last and is dropped.
  std::function<void()> cancel_first = [&stop] { stop.request_stop(); };
  peers.Spawn(AnswerBatch(&ends.b, {1, 2, 0}, cancel_first));
  const Cancellation first_cancel(stop.get_token());
  auto [a, b, c] =
      co_await WhenAll(ends.a.Call("a", first_cancel), ends.a.Call("b"), ends.a.Call("c"));
  std::vector<std::string> seen = {BytesOrCode(a), BytesOrCode(b), BytesOrCode(c)};
  // Neither the next Call nor a Receive sees the dropped reply.
  peers.Spawn(AnswerAll(&ends.b));
  seen.push_back(BytesOrCode(co_await ends.a.Call("next")));
  absl::Status sent = co_await ends.b.Send("plain");
  EXPECT_TRUE(sent.ok()) << sent;
  seen.push_back(BytesOrCode(co_await ends.a.Receive()));
  co_return seen;
}

TEST(ChannelCallTest, ACancelledCallAmongSeveralLosesOnlyItsOwnReply) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(OneOfSeveralCancelled()),
              ElementsAre("CANCELLED", "re: b", "re: c", "re: next", "plain"));
}

// Answers with the first request's id plus 100 (a request never made), then
// with the right id.
Task<void> ReplyToAnUnknownIdFirst(UnixSocket* raw) {
  char frame[64];
  absl::StatusOr<ReceivedMessage> request = co_await raw->ReceiveFds(frame, 0);
  CONET_CO_ASSERT_OK(request);
  const uint64_t id = IdOf(frame);
  std::vector<UniqueFd> fds = PipeReadEnds(2);
  CONET_CO_ASSERT_OK(co_await raw->SendFds(FirstFrame('M', 'R', id + 100, "stray"), RawFds(fds)));
  CONET_CO_ASSERT_OK(co_await raw->Send(FirstFrame('M', 'R', id, "answer")));
  CONET_CO_ASSERT_OK(co_await raw->Send(PlainFrame("after")));
}

Task<std::vector<std::string>> UnknownReplyId() {
  RawPeer peer = MakeRawPeer();
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(ReplyToAnUnknownIdFirst(&peer.raw));
  std::vector<std::string> seen;
  seen.push_back(BytesOrCode(co_await peer.channel.Call("question")));
  absl::StatusOr<Message> stray = co_await peer.channel.Receive();
  EXPECT_THAT(stray.status().message(), HasSubstr("reply to an unknown request"));
  EXPECT_THAT(stray.status().message(), HasSubstr(absl::StrCat("fd ", peer.channel.socket().fd())));
  seen.push_back(BytesOrCode(stray));
  seen.push_back(BytesOrCode(co_await peer.channel.Receive()));
  co_return seen;
}

TEST(ChannelCallTest, AReplyWithAnUnknownIdIsAnErrorForThatMessageOnly) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(UnknownReplyId()), ElementsAre("answer", "DATA_LOSS", "after"));
}

Task<std::vector<std::string>> LargeCalls() {
  Ends ends = MakeChannels();
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(AnswerBatch(&ends.b, {1, 0}, nullptr));
  std::vector<UniqueFd> many = PipeReadEnds(600);
  std::vector<UniqueFd> some = PipeReadEnds(300);
  const std::string big(60 * 1024, 'x');
  // Both requests (and both replies) take several frames; none interleave.
  auto [first, second] =
      co_await WhenAll(ends.a.Call("many", RawFds(many)), ends.a.Call(big, RawFds(some)));
  std::vector<std::string> seen = {Described(first)};
  EXPECT_EQ(second.ok() ? second->bytes : "", "re: " + big);
  seen.push_back(second.ok() ? absl::StrCat("big with ", second->fds.size()) : Described(second));
  co_return seen;
}

TEST(ChannelCallTest, LargeRequestsAndRepliesWithDescriptorsAreSplitAndJoined) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(LargeCalls()), ElementsAre("re: many with 600", "big with 300"));
}

// Answers the first request with a reply over the caller's limits, the
// second properly.
Task<void> ReplyTooBigThenFine(UnixSocket* raw) {
  char frame[64];
  const std::vector<std::string> payloads = {std::string(40, 'x'), "fine"};
  for (const std::string& payload : payloads) {
    absl::StatusOr<ReceivedMessage> request = co_await raw->ReceiveFds(frame, 0);
    CONET_CO_ASSERT_OK(request);
    CONET_CO_ASSERT_OK(co_await raw->Send(FirstFrame('M', 'R', IdOf(frame), payload)));
  }
}

Task<std::vector<std::string>> ReplyOverTheLimit() {
  RawPeer peer = MakeRawPeer({.max_message_bytes = 16});
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(ReplyTooBigThenFine(&peer.raw));
  std::vector<std::string> seen;
  seen.push_back(BytesOrCode(co_await peer.channel.Call("one")));
  seen.push_back(BytesOrCode(co_await peer.channel.Call("two")));
  co_return seen;
}

TEST(ChannelCallTest, AReplyOverTheLimitsFailsItsCall) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(ReplyOverTheLimit()), ElementsAre("OUT_OF_RANGE", "fine"));
}

// Sends three messages, then answers the one request.
Task<void> MessagesBeforeTheReply(Channel* channel) {
  absl::StatusOr<Message> request = co_await channel->Receive();
  CONET_CO_ASSERT_OK(request);
  const std::vector<std::string> texts = {"m1", "m2", "m3"};
  for (const std::string& text : texts) CONET_CO_ASSERT_OK(co_await channel->Send(text));
  CONET_CO_ASSERT_OK(co_await channel->Reply(*request, "reply"));
  co_await AnswerAll(channel);
}

Task<std::vector<std::string>> QueueLimit() {
  Ends ends = MakeChannels({.max_queued_messages = 2});
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(MessagesBeforeTheReply(&ends.b));
  std::vector<std::string> seen;
  // m1 and m2 fill the queue: the Call stops reading before its reply.
  seen.push_back(BytesOrCode(co_await ends.a.Call("q", Within(absl::Milliseconds(50)))));
  for (int i = 0; i < 3; ++i) seen.push_back(BytesOrCode(co_await ends.a.Receive()));
  seen.push_back(BytesOrCode(co_await ends.a.Call("next")));
  co_return seen;
}

TEST(ChannelCallTest, AFullQueueStopsCallsReadingUntilAReceiveTakesOne) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(QueueLimit()),
              ElementsAre("DEADLINE_EXCEEDED", "m1", "m2", "m3", "re: next"));
}

// Calls the peer `count` times at once, tagging each request with `side`.
Task<std::vector<std::string>> CallMany(Channel* channel, std::string side, int count) {
  std::vector<Task<absl::StatusOr<Message>>> calls;
  for (int i = 0; i < count; ++i) calls.push_back(channel->Call(absl::StrCat(side, i)));
  std::vector<std::string> seen;
  for (absl::StatusOr<Message>& reply : co_await WhenAll(std::move(calls))) {
    seen.push_back(BytesOrCode(reply));
  }
  co_return seen;
}

Task<std::vector<std::string>> BothSidesCallAndAnswer() {
  Ends ends = MakeChannels();
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(AnswerAll(&ends.a));
  peers.Spawn(AnswerAll(&ends.b));
  auto [from_a, from_b] = co_await WhenAll(CallMany(&ends.a, "a", 3), CallMany(&ends.b, "b", 3));
  std::vector<std::string> seen = from_a;
  seen.insert(seen.end(), from_b.begin(), from_b.end());
  co_return seen;
}

TEST(ChannelCallTest, ReceiveServesRequestsBesideCallsOnBothSides) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(BothSidesCallAndAnswer()),
              ElementsAre("re: a0", "re: a1", "re: a2", "re: b0", "re: b1", "re: b2"));
}

Task<std::string> CallAndAnswer() {
  Ends ends = MakeChannels();
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(AnswerBatch(&ends.b, {0}, nullptr));
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  co_return Described(co_await ends.a.Call("question", RawFds(fds)));
}

TEST(ChannelCallTest, CallSendsARequestAndReceivesTheReply) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(CallAndAnswer()), "re: question with 1");
}

Task<absl::Status> ReplyToAPlainMessage() {
  Ends ends = MakeChannels();
  absl::Status sent = co_await ends.a.Send("plain");
  if (!sent.ok()) co_return sent;
  absl::StatusOr<Message> plain = co_await ends.b.Receive();
  if (!plain.ok()) co_return plain.status();
  co_return co_await ends.b.Reply(*plain, "answer");
}

TEST(ChannelCallTest, OnlyARequestCanBeAnswered) {
  absl::Status status = RunTask(ReplyToAPlainMessage());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
}

Task<void> ReceiveThenClose(Channel* channel) {
  CONET_CO_ASSERT_OK(co_await channel->Receive());
  channel->socket().Close();
}

// Returns "<end>" for the end of the channel, else BytesOrCode.
std::string EndOr(const absl::StatusOr<Message>& got) {
  return IsEndOfChannel(got.status()) ? "<end>" : BytesOrCode(got);
}

Task<std::vector<std::string>> CallWhenThePeerCloses() {
  Ends ends = MakeChannels();
  TaskGroup peers;  // declared after the channels, so it goes first
  peers.Spawn(ReceiveThenClose(&ends.b));
  std::vector<std::string> seen;
  seen.push_back(EndOr(co_await ends.a.Call("never answered")));
  seen.push_back(EndOr(co_await ends.a.Receive()));
  co_return seen;
}

TEST(ChannelCallTest, ACallWaitingWhenThePeerClosesGetsTheEnd) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(CallWhenThePeerCloses()), ElementsAre("<end>", "<end>"));
}

}  // namespace
}  // namespace conet::ipc
