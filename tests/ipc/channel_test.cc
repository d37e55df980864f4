#include "ipc/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::testing::FdLeakCheck;
using ::conet::testing::RunTask;
using ::testing::HasSubstr;

struct Ends {
  Channel a;
  Channel b;
};

Ends MakeChannels(ChannelOptions options = {}) {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair =
      SocketPair(SocketType::kSeqPacket);
  if (!pair.ok()) std::abort();
  return Ends{Channel(std::move(pair->first), options),
              Channel(std::move(pair->second), options)};
}

std::vector<UniqueFd> Pipes(size_t count) {
  std::vector<UniqueFd> fds;
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  ::close(p[1]);
  fds.emplace_back(p[0]);
  while (fds.size() < count) fds.emplace_back(::fcntl(p[0], F_DUPFD_CLOEXEC, 0));
  return fds;
}

std::vector<int> Raw(const std::vector<UniqueFd>& fds) {
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.Get());
  return raw;
}

Task<std::vector<std::string>> Messages(size_t fd_count) {
  Ends ends = MakeChannels();
  std::vector<std::string> seen;
  std::vector<UniqueFd> fds = Pipes(fd_count);
  absl::Status sent = co_await ends.a.Send("payload", Raw(fds));
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
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair =
      SocketPair(SocketType::kSeqPacket);
  UnixSocket raw = std::move(pair->first);
  ChannelOptions options;
  options.max_message_bytes = 16;
  options.max_fds = 2;
  Channel channel(std::move(pair->second), options);
  {
    std::vector<UniqueFd> fds = Pipes(2);
    co_await raw.SendFds(std::string("M") + std::string(40, 'x'), Raw(fds));  // too long
    co_await raw.SendFds(std::string("Mmany"), Raw(Pipes(3)));                // too many fds
    co_await raw.SendFds(std::string("?bad header"), Raw(fds));               // malformed
    co_await raw.Send(std::string("Mfine"));
  }
  std::vector<std::string> seen;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<Message> got = co_await channel.Receive();
    seen.push_back(got.ok() ? got->bytes : std::string(absl::StatusCodeToString(got.status().code())));
  }
  co_return seen;
}

TEST(ChannelTest, AHostilePeerGetsErrorsAndNothingLeaks) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(HostilePeer()),
              ::testing::ElementsAre("OUT_OF_RANGE", "RESOURCE_EXHAUSTED", "DATA_LOSS",
                                     "fine"));
}

// The first frame of a two-frame message is refused (too long); the rest of
// that message must not be taken for the next one.
Task<std::vector<std::string>> CutOffMessage() {
  absl::StatusOr<std::pair<UnixSocket, UnixSocket>> pair =
      SocketPair(SocketType::kSeqPacket);
  UnixSocket raw = std::move(pair->first);
  ChannelOptions options;
  options.max_message_bytes = 16;
  Channel channel(std::move(pair->second), options);
  {
    std::vector<UniqueFd> fds = Pipes(2);
    co_await raw.SendFds(std::string("C") + std::string(40, 'x'), Raw(fds));
    co_await raw.SendFds(std::string("M"), Raw(fds));  // the rest of it
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

Task<std::string> Serve(Channel* channel) {
  absl::StatusOr<Message> request = co_await channel->Receive();
  if (!request.ok()) co_return request.status().ToString();
  std::vector<UniqueFd> fds = Pipes(1);
  absl::Status sent = co_await channel->Send("re: " + request->bytes, Raw(fds));
  co_return sent.ToString();
}

Task<std::string> CallAndAnswer() {
  Ends ends = MakeChannels();
  EventLoop::Current()->SpawnDetached([](Channel* c) -> Task<void> {
    co_await Serve(c);
  }(&ends.b));
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
