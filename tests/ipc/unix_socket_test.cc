#include "ipc/unix_socket.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ipc/fd_passing.h"
#include "net/listen_options.h"
#include "net/stream_socket.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet::ipc {
namespace {

using ::conet::test::AsNobody;
using ::conet::test::FdLeakCheck;
using ::conet::test::PipeReadEnds;
using ::conet::test::RawFds;
using ::conet::test::RunTask;
using ::conet::test::SharedTempDir;
using ::testing::HasSubstr;

using Pair = std::pair<UnixSocket, UnixSocket>;

using Streams = std::pair<StreamSocket, StreamSocket>;

Pair MustPair(SocketType type) {
  absl::StatusOr<Pair> pair = SocketPair(type);
  if (!pair.ok()) {
    ADD_FAILURE() << pair.status();
    std::abort();
  }
  return std::move(*pair);
}

Streams MustStreams() {
  absl::StatusOr<Streams> pair = StreamPair();
  if (!pair.ok()) {
    ADD_FAILURE() << pair.status();
    std::abort();
  }
  return std::move(*pair);
}

// Descriptor passing spelled the same for both kinds of socket, so that one
// test runs on every type: messages (UnixSocket) and UNIX streams.
SendFdsAwaiter SendWith(UnixSocket& socket, ConstBytes bytes, std::span<const int> fds) {
  return socket.SendFds(bytes, fds);
}
SendFdsAwaiter SendWith(StreamSocket& stream, ConstBytes bytes, std::span<const int> fds) {
  return SendFds(stream, bytes, fds);
}
ReceiveFdsAwaiter ReceiveWith(UnixSocket& socket, std::span<char> buffer, size_t max_fds) {
  return socket.ReceiveFds(buffer, max_fds);
}
ReceiveFdsAwaiter ReceiveWith(StreamSocket& stream, std::span<char> buffer, size_t max_fds) {
  return ReceiveFds(stream, buffer, max_fds);
}

// Reports whether `a` and `b` are the same open file (same inode).
bool SameFile(int a, int b) {
  struct stat sa, sb;
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
         sa.st_dev == sb.st_dev;
}

// `make_pair` makes the connected pair (on the loop RunTask runs).
template <typename MakePair>
Task<void> PassOneDescriptor(MakePair make_pair) {
  auto pair = make_pair();
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::StatusOr<size_t> sent = co_await SendWith(pair.first, std::string("here"), RawFds(fds));
  EXPECT_EQ(sent.value_or(0), 4u) << sent.status();
  char buffer[16];
  absl::StatusOr<ReceivedMessage> got = co_await ReceiveWith(pair.second, buffer, 1);
  EXPECT_TRUE(got.ok()) << got.status();
  if (!got.ok()) co_return;
  EXPECT_EQ(std::string(buffer, got->size), "here");
  EXPECT_EQ(got->fds.size(), 1u);
  if (got->fds.size() == 1) {
    EXPECT_TRUE(SameFile(got->fds[0].fd(), fds[0].fd()));
    EXPECT_NE(got->fds[0].fd(), fds[0].fd());
    EXPECT_TRUE(::fcntl(got->fds[0].fd(), F_GETFD) & FD_CLOEXEC) << "not close-on-exec";
  }
}

TEST(UnixSocketTest, PassesADescriptorOnEveryType) {
  for (SocketType type : {SocketType::kDatagram, SocketType::kSeqPacket}) {
    SCOPED_TRACE(SocketTypeName(type));
    FdLeakCheck leaks;
    RunTask(PassOneDescriptor([type] { return MustPair(type); }));
  }
  FdLeakCheck leaks;
  RunTask(PassOneDescriptor(MustStreams));
}

Task<absl::Status> SendFdsWithNoBytes() {
  Streams pair = MustStreams();
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::StatusOr<size_t> sent = co_await SendFds(pair.first, std::string(), RawFds(fds));
  co_return sent.status();
}

TEST(UnixSocketTest, DescriptorsWithoutADataByteAreRefused) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(SendFdsWithNoBytes());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("at least one data byte"));
}

Task<std::pair<absl::Status, absl::Status>> SendMany(size_t count) {
  Pair pair = MustPair(SocketType::kSeqPacket);
  std::vector<UniqueFd> fds = PipeReadEnds(count);
  absl::StatusOr<size_t> sent = co_await pair.first.SendFds(std::string("x"), RawFds(fds));
  if (!sent.ok()) co_return std::make_pair(sent.status(), absl::OkStatus());
  char buffer[4];
  absl::StatusOr<ReceivedMessage> got = co_await pair.second.ReceiveFds(buffer, kMaxFdsPerMessage);
  EXPECT_EQ(got.ok() ? got->fds.size() : 0, count);
  co_return std::make_pair(absl::OkStatus(), got.status());
}

TEST(UnixSocketTest, TwoHundredFiftyThreeDescriptorsPassAndMoreAreRefused) {
  FdLeakCheck leaks;
  auto [sent, received] = RunTask(SendMany(253));
  EXPECT_TRUE(sent.ok()) << sent;
  EXPECT_TRUE(received.ok()) << received;
  auto [refused, unused] = RunTask(SendMany(254));
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("at most 253"));
}

// Sends `sent` descriptors, receives with room for `room`.
template <typename MakePair>
Task<absl::Status> ReceiveWithRoomFor(size_t sent, size_t room, MakePair make_pair) {
  auto pair = make_pair();
  {
    std::vector<UniqueFd> fds = PipeReadEnds(sent);
    absl::StatusOr<size_t> n = co_await SendWith(pair.first, std::string("abc"), RawFds(fds));
    EXPECT_TRUE(n.ok()) << n.status();
  }  // our copies are closed: any descriptor left open now is a leak
  char buffer[16];
  absl::StatusOr<ReceivedMessage> got = co_await ReceiveWith(pair.second, buffer, room);
  co_return got.status();
}

template <typename MakePair>
void ExpectSurplusClosed(MakePair make_pair) {
  for (size_t sent : {2, 253}) {
    FdLeakCheck leaks;  // the kernel installs 2 into a 1-fd buffer: both closed
    absl::Status status = RunTask(ReceiveWithRoomFor(sent, 1, make_pair));
    EXPECT_TRUE(absl::IsResourceExhausted(status)) << sent << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr("more descriptors than the 1"));
  }
  FdLeakCheck leaks;
  absl::Status none = RunTask(ReceiveWithRoomFor(1, 0, make_pair));
  EXPECT_TRUE(absl::IsResourceExhausted(none)) << none;
}

TEST(UnixSocketTest, SurplusDescriptorsAreClosedAndReported) {
  {
    SCOPED_TRACE("seqpacket");
    ExpectSurplusClosed([] { return MustPair(SocketType::kSeqPacket); });
  }
  SCOPED_TRACE("stream");
  ExpectSurplusClosed(MustStreams);
}

Task<absl::Status> TruncatedSeqPacket() {
  Pair pair = MustPair(SocketType::kSeqPacket);
  {
    std::vector<UniqueFd> fds = PipeReadEnds(3);
    co_await pair.first.SendFds(std::string(100, 'm'), RawFds(fds));
  }
  co_await pair.first.Send(std::string("next"));
  char small[10];
  absl::StatusOr<ReceivedMessage> got = co_await pair.second.ReceiveFds(small, 3);
  // The next message is intact.
  char buffer[16];
  absl::StatusOr<ReceivedMessage> next = co_await pair.second.Receive(buffer);
  EXPECT_EQ(next.ok() ? std::string(buffer, next->size) : "", "next");
  co_return got.status();
}

TEST(UnixSocketTest, ATruncatedMessageIsAnErrorAndItsDescriptorsClosed) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(TruncatedSeqPacket());
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("longer than the 10-byte buffer"));
}

// On a stream the descriptors ride with the first byte of the send that
// carried them: they arrive with the receive that reads that byte (which
// may begin with earlier bytes), and that receive ends no later than the
// end of their send. Reads of `chunk` bytes until 18 bytes have come.
Task<std::vector<std::string>> StreamBoundaries(size_t chunk) {
  Streams pair = MustStreams();
  std::vector<UniqueFd> fds = PipeReadEnds(2);
  co_await pair.first.WriteAll(std::string("plain"));
  co_await SendFds(pair.first, std::string("with-fds"), RawFds(fds));
  co_await pair.first.WriteAll(std::string("after"));
  std::vector<std::string> seen;
  char buffer[64];
  size_t total = 0;
  while (total < 18) {
    absl::StatusOr<ReceivedMessage> got =
        co_await ReceiveFds(pair.second, std::span<char>(buffer, chunk), 2);
    if (!got.ok() || got->size == 0) break;
    total += got->size;
    seen.push_back(absl::StrCat(std::string(buffer, got->size), "+", got->fds.size()));
  }
  co_return seen;
}

TEST(UnixSocketTest, OnAStreamDescriptorsArriveWithTheirBytes) {
  FdLeakCheck leaks;
  // Partial reads: the descriptors come with the read holding "w", once.
  EXPECT_THAT(RunTask(StreamBoundaries(3)),
              ::testing::ElementsAre("pla+0", "inw+2", "ith+0", "-fd+0", "saf+0", "ter+0"));
  // A large read stops at the end of the send that carried descriptors.
  EXPECT_THAT(RunTask(StreamBoundaries(64)), ::testing::ElementsAre("plainwith-fds+2", "after+0"));
}

// A stream send far larger than the socket buffer is written in several
// pieces while the reader drains it; the descriptors must go with the first
// piece only, so exactly one receive reports them.
Task<std::pair<size_t, size_t>> LargeStreamSendWithFds() {
  Streams pair = MustStreams();
  std::vector<UniqueFd> fds = PipeReadEnds(3);
  const std::string data(4 << 20, 'd');
  struct Reader {
    static Task<std::pair<size_t, size_t>> Drain(StreamSocket* socket, size_t size) {
      std::vector<char> buffer(65536);
      size_t bytes = 0, descriptors = 0;
      while (bytes < size) {
        absl::StatusOr<ReceivedMessage> got = co_await ReceiveFds(*socket, buffer, 3);
        if (!got.ok() || got->size == 0) break;
        bytes += got->size;
        descriptors += got->fds.size();
      }
      co_return std::make_pair(bytes, descriptors);
    }
    static Task<absl::StatusOr<size_t>> Send(StreamSocket* socket, const std::string* text,
                                             const std::vector<int>* raw) {
      co_return co_await SendFds(*socket, *text, *raw);
    }
  };
  const std::vector<int> raw = RawFds(fds);
  auto [sent, received] = co_await WhenAll(Reader::Send(&pair.first, &data, &raw),
                                           Reader::Drain(&pair.second, data.size()));
  EXPECT_EQ(sent.value_or(0), data.size()) << sent.status();
  co_return received;
}

TEST(UnixSocketTest, APartialStreamWriteNeverSendsTheDescriptorsTwice) {
  FdLeakCheck leaks;
  auto [bytes, descriptors] = RunTask(LargeStreamSendWithFds());
  EXPECT_EQ(bytes, 4u << 20);
  EXPECT_EQ(descriptors, 3u);
}

Task<absl::Status> ReceiveOutOfDescriptors() {
  Pair pair = MustPair(SocketType::kSeqPacket);
  {
    std::vector<UniqueFd> fds = PipeReadEnds(10);
    co_await pair.first.SendFds(std::string("ten"), RawFds(fds));
  }
  // Leave room for only a few new descriptors.
  rlimit old_limit;
  ::getrlimit(RLIMIT_NOFILE, &old_limit);
  int highest = 0;
  for (int fd : ::conet::test::OpenFds()) highest = std::max(highest, fd);
  rlimit low = old_limit;
  low.rlim_cur = static_cast<rlim_t>(highest + 4);
  ::setrlimit(RLIMIT_NOFILE, &low);
  char buffer[8];
  absl::StatusOr<ReceivedMessage> got = co_await pair.second.ReceiveFds(buffer, 10);
  ::setrlimit(RLIMIT_NOFILE, &old_limit);
  co_return got.status();
}

TEST(UnixSocketTest, RunningOutOfDescriptorsWhileReceivingClosesThoseInstalled) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(ReceiveOutOfDescriptors());
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
}

Task<absl::Status> SendToClosedPeer() {
  Streams pair = MustStreams();
  pair.second.Close();
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::StatusOr<size_t> sent = co_await SendFds(pair.first, std::string("x"), RawFds(fds));
  co_return sent.status();
}

TEST(UnixSocketTest, SendingToAClosedPeerIsAnErrorNotSigpipe) {
  FdLeakCheck leaks;
  std::signal(SIGPIPE, SIG_DFL);  // Bazel starts tests with it ignored
  absl::Status status = RunTask(SendToClosedPeer());
  EXPECT_THAT(status.message(), HasSubstr("Broken pipe")) << status;
}

Task<std::string> DatagramWithSender(std::string name) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  absl::StatusOr<UnixSocket> server = UnixSocket::BindDatagram(*address);
  absl::StatusOr<SocketAddress> client_address = SocketAddress::Parse("unix:@" + name + "-client");
  absl::StatusOr<UnixSocket> client = UnixSocket::BindDatagram(*client_address);
  EXPECT_TRUE(server.ok() && client.ok());
  std::vector<UniqueFd> fds = PipeReadEnds(2);
  absl::StatusOr<size_t> sent =
      co_await client->SendTo(std::string("dgram"), RawFds(fds), *address);
  EXPECT_TRUE(sent.ok()) << sent.status();
  char buffer[16];
  absl::StatusOr<ReceivedMessage> got = co_await server->ReceiveFds(buffer, 2);
  if (!got.ok()) co_return got.status().ToString();
  EXPECT_EQ(got->fds.size(), 2u);
  co_return absl::StrCat(std::string(buffer, got->size), " from ",
                         got->from ? got->from->ToString() : "nobody");
}

TEST(UnixSocketTest, DatagramsCarryDescriptorsAndTheSender) {
  FdLeakCheck leaks;
  const std::string name = absl::StrCat("conet-dgram-", ::getpid());
  EXPECT_EQ(RunTask(DatagramWithSender(name)), absl::StrCat("dgram from unix:@", name, "-client"));
}

// A forked child connects; the listener sees the child's credentials.
Task<void> CredentialsOfAChild(std::string path) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + path);
  ListenOptions options;
  options.unix_mode = 0600;
  absl::StatusOr<SeqPacketListener> listener = SeqPacketListener::Bind(*address, options);
  EXPECT_TRUE(listener.ok()) << listener.status();
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const pid_t child = ::fork();
  if (child == 0) {
    int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (::connect(fd, address->data(), address->size()) != 0) _exit(1);
    char byte;
    ::read(fd, &byte, 1);  // until the parent closes
    _exit(0);
  }
  absl::StatusOr<UnixSocket> conn = co_await listener->Accept(Within(absl::Seconds(10)));
  EXPECT_TRUE(conn.ok()) << conn.status();
  absl::StatusOr<Credentials> peer = conn->PeerCredentials();
  EXPECT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->pid, child);
  EXPECT_EQ(peer->uid, ::getuid());
  EXPECT_EQ(peer->gid, ::getgid());
  absl::StatusOr<UniqueFd> pidfd = conn->PeerPidFd();
  if (pidfd.ok()) {
    // /proc/self/fdinfo/N names the process a pidfd refers to.
    std::ifstream info(absl::StrCat("/proc/self/fdinfo/", pidfd->fd()));
    std::string line, pid_line;
    while (std::getline(info, line)) {
      if (line.rfind("Pid:", 0) == 0) pid_line = line;
    }
    EXPECT_THAT(pid_line, HasSubstr(absl::StrCat(child)));
  } else {
    EXPECT_TRUE(absl::IsUnimplemented(pidfd.status())) << pidfd.status();
  }
  conn->Close();
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

// Receives one datagram on `server` (credentials on) after `send` ran in
// a child as nobody; yields the credentials it came with.
Task<std::optional<Credentials>> CredentialsOfADatagram(UnixSocket* server, std::string name,
                                                        bool as_nobody) {
  auto send = [&name] {
    const UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un to{};
    to.sun_family = AF_UNIX;
    std::memcpy(to.sun_path + 1, name.data(), name.size());
    const socklen_t size = offsetof(sockaddr_un, sun_path) + 1 + name.size();
    return ::sendto(fd.fd(), "who", 3, 0, reinterpret_cast<sockaddr*>(&to), size) == 3;
  };
  if (as_nobody) {
    EXPECT_EQ(AsNobody(send), 0);
  } else {
    EXPECT_TRUE(send());
  }
  char buffer[8];
  absl::StatusOr<ReceivedMessage> got =
      co_await server->ReceiveFds(buffer, 1, Within(absl::Seconds(10)));
  EXPECT_TRUE(got.ok()) << got.status();
  if (!got.ok()) co_return std::nullopt;
  co_return got->credentials;
}

// Two senders on one unconnected socket with credentials on: this process,
// then a child as nobody, each told apart.
Task<void> EachSenderToldApart(std::string name) {
  absl::StatusOr<UnixSocket> server =
      UnixSocket::BindDatagram(*SocketAddress::Parse("unix:@" + name));
  CONET_CO_ASSERT_OK(server);
  CONET_CO_ASSERT_OK(server->ReceiveSenderCredentials());
  std::optional<Credentials> ours = co_await CredentialsOfADatagram(&*server, name, false);
  EXPECT_TRUE(ours.has_value());
  if (ours.has_value()) {
    EXPECT_EQ(ours->pid, ::getpid());
    EXPECT_EQ(ours->uid, ::getuid());
  }
  std::optional<Credentials> theirs = co_await CredentialsOfADatagram(&*server, name, true);
  EXPECT_TRUE(theirs.has_value());
  if (theirs.has_value()) {
    EXPECT_EQ(theirs->uid, ::getpwnam("nobody")->pw_uid);
    EXPECT_NE(theirs->pid, ::getpid());
  }
}

TEST(UnixSocketTest, EachDatagramSaysWhoSentIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to send as nobody";
  FdLeakCheck leaks;
  RunTask(EachSenderToldApart(absl::StrCat("conet-passcred-", ::getpid())));
}

// Without ReceiveSenderCredentials, a datagram comes without them.
Task<void> NoCredentialsUnasked(std::string name) {
  absl::StatusOr<UnixSocket> server =
      UnixSocket::BindDatagram(*SocketAddress::Parse("unix:@" + name));
  CONET_CO_ASSERT_OK(server);
  std::optional<Credentials> none = co_await CredentialsOfADatagram(&*server, name, false);
  EXPECT_FALSE(none.has_value());
}

TEST(UnixSocketTest, WithoutAskingNoCredentialsArrive) {
  FdLeakCheck leaks;
  RunTask(NoCredentialsUnasked(absl::StrCat("conet-nocred-", ::getpid())));
}

// A seqpacket pair made here, one end given to a child: the messages the
// child sends carry the child's pid, where SO_PEERCRED still names this
// process (which made the pair). Descriptors come along as before.
Task<void> CredentialsFollowTheSender() {
  absl::StatusOr<Pair> pair = SocketPair(SocketType::kSeqPacket);
  CONET_CO_ASSERT_OK(pair);
  CONET_CO_ASSERT_OK(pair->first.ReceiveSenderCredentials());
  const int child_end = pair->second.fd();
  const pid_t child = ::fork();
  if (child == 0) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) _exit(1);
    char one = '1';
    iovec iov{&one, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &pipe_fds[0], sizeof(int));
    _exit(::sendmsg(child_end, &msg, MSG_NOSIGNAL) == 1 ? 0 : 1);
  }
  char buffer[8];
  absl::StatusOr<ReceivedMessage> got =
      co_await pair->first.ReceiveFds(buffer, 1, Within(absl::Seconds(10)));
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  CONET_CO_ASSERT_OK(got);
  EXPECT_EQ(got->fds.size(), 1u);
  EXPECT_TRUE(got->credentials.has_value());
  if (got->credentials.has_value()) {
    EXPECT_EQ(got->credentials->pid, child);
  }
  absl::StatusOr<Credentials> peer = pair->first.PeerCredentials();
  CONET_CO_ASSERT_OK(peer);
  EXPECT_EQ(peer->pid, ::getpid());
}

TEST(UnixSocketTest, CredentialsFollowEachMessagesSender) {
  FdLeakCheck leaks;
  RunTask(CredentialsFollowTheSender());
}

// A peer that connected and is gone: its pidfd is refused, whether it is
// still a zombie or already reaped.
Task<void> PidFdOfAPeerThatIsGone(std::string name, bool reap) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  absl::StatusOr<SeqPacketListener> listener = SeqPacketListener::Bind(*address);
  CONET_CO_ASSERT_OK(listener);
  const pid_t child = ::fork();
  if (child == 0) {
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    _exit(::connect(fd, address->data(), address->size()) == 0 ? 0 : 1);
  }
  absl::StatusOr<UnixSocket> conn = co_await listener->Accept(Within(absl::Seconds(10)));
  CONET_CO_ASSERT_OK(conn);
  siginfo_t info{};
  // Wait for the exit; reap it or leave it a zombie.
  EXPECT_EQ(::waitid(P_PID, child, &info, WEXITED | (reap ? 0 : WNOWAIT)), 0);
  absl::StatusOr<UniqueFd> pidfd = conn->PeerPidFd();
  if (absl::IsUnimplemented(pidfd.status())) co_return;  // kernel before 6.5
  EXPECT_FALSE(pidfd.ok());
  if (!reap) {
    EXPECT_THAT(pidfd.status().message(), HasSubstr("the peer process has exited"));
    EXPECT_EQ(::waitpid(child, nullptr, 0), child);
  }
}

TEST(UnixSocketTest, APeerPidFdFailsClosedOnceThePeerIsGone) {
  FdLeakCheck leaks;
  RunTask(PidFdOfAPeerThatIsGone(absl::StrCat("conet-pidfd-zombie-", ::getpid()), false));
  RunTask(PidFdOfAPeerThatIsGone(absl::StrCat("conet-pidfd-reaped-", ::getpid()), true));
}

TEST(UnixSocketTest, PeerCredentialsNameAForkedChild) {
  FdLeakCheck leaks;
  char dir[] = "/tmp/conet-cred-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  RunTask(CredentialsOfAChild(absl::StrCat(dir, "/s.sock")));
  ::rmdir(dir);
}

Task<std::string> RefusedPeer(std::string name) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  ListenOptions options;
  options.allowed_uids = {::getuid() + 12345};
  options.refusal = "ERR permission denied";
  absl::StatusOr<SeqPacketListener> listener = SeqPacketListener::Bind(*address, options);
  EXPECT_TRUE(listener.ok()) << listener.status();
  // The client speaks first, with a descriptor, before it is accepted: the
  // refusal must still reach it (not a reset) and the descriptor be closed.
  absl::StatusOr<UnixSocket> client =
      co_await UnixSocket::Connect(*address, SocketType::kSeqPacket);
  EXPECT_TRUE(client.ok()) << client.status();
  {
    std::vector<UniqueFd> fds = PipeReadEnds(1);
    co_await client->SendFds(std::string("OPEN secret"), RawFds(fds));
  }
  absl::StatusOr<UnixSocket> accepted = co_await listener->Accept();
  EXPECT_TRUE(absl::IsPermissionDenied(accepted.status())) << accepted.status();
  EXPECT_THAT(accepted.status().message(), HasSubstr(absl::StrCat("uid ", ::getuid())));
  char buffer[64];
  absl::StatusOr<ReceivedMessage> refusal = co_await client->Receive(buffer);
  std::string text = refusal.ok() ? std::string(buffer, refusal->size) : "";
  absl::StatusOr<ReceivedMessage> end = co_await client->Receive(buffer);
  EXPECT_EQ(end.ok() ? end->size : 99, 0u) << "not disconnected";
  co_return text;
}

TEST(UnixSocketTest, AListenerRefusesPeersWhoseUidIsNotAllowed) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(RefusedPeer(absl::StrCat("conet-refuse-", ::getpid()))),
            "ERR permission denied");
}

// A UNIX connect that finds the listener's queue full waits until there is
// room (there is no readiness event for it: it retries) and then succeeds.
Task<absl::Status> ConnectWhenTheQueueDrains(std::string name) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  ListenOptions options;
  options.backlog = 0;
  absl::StatusOr<SeqPacketListener> listener = SeqPacketListener::Bind(*address, options);
  EXPECT_TRUE(listener.ok()) << listener.status();
  std::vector<UniqueFd> queued;
  for (int i = 0; i < 8; ++i) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (::connect(fd.fd(), address->data(), address->size()) != 0) break;
    queued.push_back(std::move(fd));
  }
  struct Drain {
    static Task<void> AcceptOneLater(SeqPacketListener* l) {
      co_await Sleep(absl::Milliseconds(20));
      absl::StatusOr<UnixSocket> one = co_await l->Accept();
      EXPECT_TRUE(one.ok()) << one.status();
    }
  };
  EventLoop::Current()->SpawnDetached(Drain::AcceptOneLater(&*listener));
  absl::StatusOr<UnixSocket> socket =
      co_await UnixSocket::Connect(*address, SocketType::kSeqPacket, Within(absl::Seconds(5)));
  co_return socket.status();
}

TEST(UnixSocketTest, ConnectToAFullQueueSucceedsOnceThereIsRoom) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(ConnectWhenTheQueueDrains(absl::StrCat("conet-full-", ::getpid())));
  EXPECT_TRUE(status.ok()) << status;
}

Task<absl::Status> BindOverLiveForeignListener(std::string path) {
  // A server that does not use conet's lock file listens at `path`.
  UniqueFd foreign(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + path);
  EXPECT_EQ(::bind(foreign.fd(), address->data(), address->size()), 0);
  EXPECT_EQ(::listen(foreign.fd(), 1), 0);
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(*address);
  co_return listener.status();
}

TEST(UnixSocketTest, ALiveListenerIsNeverReplaced) {
  FdLeakCheck leaks;
  char dir[] = "/tmp/conet-live-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/s.sock");
  absl::Status status = RunTask(BindOverLiveForeignListener(path));
  EXPECT_THAT(status.message(), HasSubstr("Address already in use")) << status;
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << "the live listener's file was removed";
  ::unlink(path.c_str());
  ::unlink((path + ".lock").c_str());
  ::rmdir(dir);
}

Task<void> DatagramPathLifeCycle(std::string path) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + path);
  absl::StatusOr<UnixSocket> socket = UnixSocket::BindDatagram(*address, 0600);
  EXPECT_TRUE(socket.ok()) << socket.status();
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  absl::StatusOr<UnixSocket> second = UnixSocket::BindDatagram(*address);
  EXPECT_THAT(second.status().message(), HasSubstr("Address already in use"));
  socket->Close();
  EXPECT_NE(::lstat(path.c_str(), &st), 0) << "socket file left behind";
  EXPECT_NE(::lstat((path + ".lock").c_str(), &st), 0) << "lock file left behind";
  co_return;
}

TEST(UnixSocketTest, ADatagramPathGetsItsModeAndIsRemovedOnClose) {
  FdLeakCheck leaks;
  char dir[] = "/tmp/conet-dgram-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  RunTask(DatagramPathLifeCycle(absl::StrCat(dir, "/d.sock")));
  ::rmdir(dir);
}

Task<absl::Status> BindListener(std::string path) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + path);
  if (!address.ok()) co_return address.status();
  co_return StreamListener::Bind(*address).status();
}

// Binds a stream listener at `path` (on a loop of its own) and returns its
// status.
absl::Status BindListenerAt(const std::string& path) { return RunTask(BindListener(path)); }

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(UnixSocketFileTest, ALockFileSymlinkPlantedByAnotherUserIsNotFollowed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  FdLeakCheck leaks;
  SharedTempDir shared;
  char private_dir[] = "/tmp/conet-private-XXXXXX";  // 0700, root's
  ASSERT_NE(::mkdtemp(private_dir), nullptr);
  const std::string target = absl::StrCat(private_dir, "/created-by-root");
  const std::string socket_path = shared.Path("broker.sock");
  ASSERT_EQ(
      AsNobody([&] { return ::symlink(target.c_str(), (socket_path + ".lock").c_str()) == 0; }), 0);
  absl::Status status = BindListenerAt(socket_path);
  EXPECT_THAT(status.message(), HasSubstr("symbolic link")) << status;
  EXPECT_FALSE(Exists(target)) << "the lock file followed the symlink";
  EXPECT_FALSE(Exists(socket_path));
  std::filesystem::remove_all(private_dir);
}

TEST(UnixSocketFileTest, ALockFileOfAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  FdLeakCheck leaks;
  SharedTempDir shared;
  const std::string socket_path = shared.Path("broker.sock");
  // Had it been taken, its owner could hold the flock and keep the name.
  ASSERT_EQ(AsNobody([&] {
              UniqueFd fd(::open((socket_path + ".lock").c_str(),
                                 O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
              return fd.is_open();
            }),
            0);
  absl::Status status = BindListenerAt(socket_path);
  EXPECT_TRUE(absl::IsPermissionDenied(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("belongs to uid 65534"));
}

TEST(UnixSocketFileTest, AStaleSocketFileOfAnotherUserIsNotRemoved) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  FdLeakCheck leaks;
  SharedTempDir shared;
  const std::string socket_path = shared.Path("broker.sock");
  ASSERT_EQ(AsNobody([&] {
              absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + socket_path);
              UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
              return ::bind(fd.fd(), address->data(), address->size()) == 0;
            }),  // closed without listening or unlinking: stale
            0);
  absl::Status status = BindListenerAt(socket_path);
  EXPECT_THAT(status.message(), HasSubstr("Address already in use")) << status;
  EXPECT_THAT(status.message(), HasSubstr("uid 65534"));
  EXPECT_TRUE(Exists(socket_path));
}

// Binds a listener at `path` with `mode` and returns the file's mode.
Task<mode_t> ModeOfListenerFile(std::string path, mode_t mode) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + path);
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(*address, {.unix_mode = mode});
  EXPECT_TRUE(listener.ok()) << listener.status();
  struct stat st;
  EXPECT_EQ(::lstat(path.c_str(), &st), 0);
  co_return st.st_mode & 07777;
}

TEST(UnixSocketFileTest, TheModeIsExactlyTheOneAskedForWhateverTheUmask) {
  FdLeakCheck leaks;
  SharedTempDir shared;
  const mode_t old_umask = ::umask(077);
  const std::string socket_path = shared.Path("open.sock");
  EXPECT_EQ(RunTask(ModeOfListenerFile(socket_path, 0666)), 0666u);
  EXPECT_EQ(RunTask(ModeOfListenerFile(socket_path, 0640)), 0640u);
  ::umask(old_umask);
}

Task<void> CleanedUpThenReplaced(std::string path) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:" + path);
  absl::StatusOr<StreamListener> older = StreamListener::Bind(*address);
  EXPECT_TRUE(older.ok()) << older.status();
  // A tmp cleaner removes both files; a newer server then takes the name.
  ::unlink(path.c_str());
  ::unlink((path + ".lock").c_str());
  absl::StatusOr<StreamListener> newer = StreamListener::Bind(*address);
  EXPECT_TRUE(newer.ok()) << newer.status();
  if (!older.ok() || !newer.ok()) co_return;
  older->Close();
  EXPECT_TRUE(Exists(path)) << "the older listener removed the newer one's socket file";
  EXPECT_TRUE(Exists(path + ".lock")) << "the older listener removed the newer one's lock";
  UniqueFd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(client.fd(), address->data(), address->size()), 0);
  newer->Close();
  EXPECT_FALSE(Exists(path));
  EXPECT_FALSE(Exists(path + ".lock"));
}

TEST(UnixSocketFileTest, AListenerWhoseFilesWereCleanedUpLeavesANewerOnesFilesAlone) {
  FdLeakCheck leaks;
  SharedTempDir shared;
  const std::string path = shared.Path("s.sock");
  RunTask(CleanedUpThenReplaced(path));
}

// As nobody with RLIMIT_NOFILE 32: sends one descriptor per message, never
// received, until the kernel refuses to put more in flight. True if that
// refusal was ResourceExhausted saying so, and the same socket then still
// sent a message without descriptors.
Task<bool> FillTheDescriptorsInFlight() {
  Pair pair = MustPair(SocketType::kSeqPacket);
  rlimit tight{32, 32};
  if (::setrlimit(RLIMIT_NOFILE, &tight) != 0) co_return false;
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::Status refused;
  for (int i = 0; i < 64 && refused.ok(); ++i) {
    refused = (co_await pair.first.SendFds(std::string("x"), RawFds(fds))).status();
  }
  const bool told = absl::IsResourceExhausted(refused) &&
                    absl::StrContains(refused.message(), "too many descriptors in flight");
  co_return told && (co_await pair.first.Send(std::string("plain"))).ok();
}

TEST(UnixSocketTest, TooManyDescriptorsInFlightIsResourceExhaustedAndTheSocketStaysUsable) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become nobody (root is exempt)";
  EXPECT_EQ(AsNobody([] { return RunTask(FillTheDescriptorsInFlight()); }), 0);
}

// A UNIX stream is a StreamSocket: UnixSocket and SeqPacketListener say so
// instead of driving it with message semantics.
Task<std::vector<absl::Status>> StreamsRefusedAsMessages(std::string name) {
  std::vector<absl::Status> refused;
  refused.push_back(SocketPair(SocketType::kStream).status());
  absl::StatusOr<std::pair<UniqueFd, UniqueFd>> raw = SocketPairFds(SocketType::kStream);
  refused.push_back(UnixSocket::Adopt(std::move(raw->first)).status());
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  absl::StatusOr<StreamListener> stream_listener = StreamListener::Bind(*address);
  refused.push_back(
      (co_await UnixSocket::Connect(*address, SocketType::kStream, Within(absl::Seconds(5))))
          .status());
  refused.push_back(
      SeqPacketListener::Adopt(UniqueFd(::fcntl(stream_listener->fd(), F_DUPFD_CLOEXEC, 0)))
          .status());
  co_return refused;
}

TEST(UnixSocketTest, AStreamIsAStreamSocketNotAUnixSocket) {
  FdLeakCheck leaks;
  const std::vector<absl::Status> refused =
      RunTask(StreamsRefusedAsMessages(absl::StrCat("conet-not-msg-", ::getpid())));
  ASSERT_EQ(refused.size(), 4u);
  for (const absl::Status& status : refused) {
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  }
  EXPECT_THAT(refused[0].message(), HasSubstr("StreamSocket"));
  EXPECT_THAT(refused[1].message(), HasSubstr("StreamSocket"));
  EXPECT_THAT(refused[2].message(), HasSubstr("StreamSocket"));
  EXPECT_THAT(refused[3].message(), HasSubstr("StreamListener"));
}

// The server side of a UNIX stream, as accepted: bytes in, then a reply
// with a descriptor, then bytes again, all on the one StreamSocket.
Task<std::string> ServeOneUnixStream(StreamListener* listener, int file) {
  absl::StatusOr<StreamSocket> conn = co_await listener->Accept(Within(absl::Seconds(5)));
  if (!conn.ok()) co_return conn.status().ToString();
  char buffer[16];
  absl::StatusOr<size_t> got = co_await conn->ReadExact(std::span<char>(buffer, 5));
  if (!got.ok()) co_return got.status().ToString();
  absl::StatusOr<size_t> sent = co_await SendFds(*conn, std::string("file"), {&file, 1});
  if (!sent.ok()) co_return sent.status().ToString();
  absl::StatusOr<size_t> bye = co_await conn->WriteAll(std::string("bye"));
  if (!bye.ok()) co_return bye.status().ToString();
  co_return std::string(buffer, 5);
}

Task<std::string> ByteIoAndDescriptorsOnOneStream(std::string name) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(*address);
  if (!listener.ok()) co_return listener.status().ToString();
  std::vector<UniqueFd> files = PipeReadEnds(1);
  struct Client {
    static Task<std::string> Run(SocketAddress to, int file) {
      absl::StatusOr<StreamSocket> stream =
          co_await StreamSocket::Connect(to, Within(absl::Seconds(5)));
      if (!stream.ok()) co_return stream.status().ToString();
      co_await stream->WriteAll(std::string("hello"));
      char buffer[16];
      absl::StatusOr<ReceivedMessage> reply = co_await ReceiveFds(*stream, buffer, 1);
      if (!reply.ok()) co_return reply.status().ToString();
      const bool same = reply->fds.size() == 1 && SameFile(reply->fds[0].fd(), file);
      std::string text(buffer, reply->size);
      absl::StatusOr<size_t> rest = co_await stream->ReadExact(std::span<char>(buffer, 3));
      if (!rest.ok()) co_return rest.status().ToString();
      co_return absl::StrCat(text, same ? "+fd " : "+nofd ", std::string(buffer, 3));
    }
  };
  auto [served, client] = co_await WhenAll(ServeOneUnixStream(&*listener, files[0].fd()),
                                           Client::Run(*address, files[0].fd()));
  co_return absl::StrCat(served, " / ", client);
}

TEST(UnixSocketTest, AnAcceptedUnixStreamDoesByteIoAndPassesDescriptors) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(ByteIoAndDescriptorsOnOneStream(absl::StrCat("conet-both-", ::getpid()))),
            "hello / file+fd bye");
}

Task<absl::Status> SendFdsOverTcp() {
  absl::StatusOr<StreamListener> listener =
      StreamListener::Bind(*SocketAddress::Parse("127.0.0.1:0"));
  if (!listener.ok()) co_return listener.status();
  absl::StatusOr<StreamSocket> client =
      co_await StreamSocket::Connect(listener->address(), Within(absl::Seconds(5)));
  if (!client.ok()) co_return client.status();
  std::vector<UniqueFd> fds = PipeReadEnds(1);
  absl::StatusOr<size_t> sent = co_await SendFds(*client, std::string("x"), RawFds(fds));
  co_return sent.status();
}

TEST(UnixSocketTest, DescriptorsDoNotPassOverTcp) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(SendFdsOverTcp());
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("not a UNIX stream"));
}

Task<std::string> RefusedStreamPeer(std::string name) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse("unix:@" + name);
  ListenOptions options;
  options.allowed_uids = {::getuid() + 12345};
  options.refusal = "ERR permission denied";
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(*address, options);
  if (!listener.ok()) co_return listener.status().ToString();
  absl::StatusOr<StreamSocket> client = co_await StreamSocket::Connect(*address);
  if (!client.ok()) co_return client.status().ToString();
  {
    std::vector<UniqueFd> fds = PipeReadEnds(1);
    co_await SendFds(*client, std::string("OPEN secret"), RawFds(fds));
  }
  absl::StatusOr<StreamSocket> accepted = co_await listener->Accept();
  EXPECT_TRUE(absl::IsPermissionDenied(accepted.status())) << accepted.status();
  char buffer[64];
  absl::StatusOr<size_t> refusal = co_await client->ReadSome(buffer);
  std::string text = refusal.ok() ? std::string(buffer, *refusal) : refusal.status().ToString();
  absl::StatusOr<size_t> end = co_await client->ReadSome(buffer);
  EXPECT_EQ(end.value_or(99), 0u) << "not disconnected";
  co_return text;
}

TEST(UnixSocketTest, AStreamListenerRefusesPeersWhoseUidIsNotAllowed) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(RefusedStreamPeer(absl::StrCat("conet-refuse-stream-", ::getpid()))),
            "ERR permission denied");
}

Task<absl::Status> TcpListenerWithAllowedUids() {
  ListenOptions options;
  options.allowed_uids = {0};
  co_return StreamListener::Bind(*SocketAddress::Parse("127.0.0.1:0"), options).status();
}

TEST(UnixSocketTest, AllowedUidsNeedAUnixListener) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(TcpListenerWithAllowedUids());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("needs a UNIX address"));
}

TEST(UnixSocketTest, APathTooLongForSunPathIsAClearError) {
  absl::StatusOr<SocketAddress> address =
      SocketAddress::Parse("unix:/tmp/" + std::string(120, 'p'));
  EXPECT_TRUE(absl::IsInvalidArgument(address.status()));
  EXPECT_THAT(address.status().message(), HasSubstr("107"));
}

}  // namespace
}  // namespace conet::ipc
