#include "net/stream_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::testing::HasSubstr;

SocketAddress MustParse(const std::string& text) {
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(text);
  if (!address.ok()) {
    ADD_FAILURE() << address.status();
    std::abort();
  }
  return *address;
}

// A listener and both ends of one connection to it.
struct Connection {
  StreamListener listener;
  StreamSocket client;
  StreamSocket server;
};

Task<absl::StatusOr<Connection>> Connect(SocketAddress listen_at) {
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(listen_at);
  if (!listener.ok()) co_return listener.status();
  auto [client, server] =
      co_await WhenAll(StreamSocket::Connect(listener->address()), listener->Accept());
  if (!client.ok()) co_return client.status();
  if (!server.ok()) co_return server.status();
  co_return Connection{std::move(*listener), std::move(*client), std::move(*server)};
}

// Writes a string literal, then closes: returns all the peer received.
Task<std::string> WriteALiteral() {
  absl::StatusOr<Connection> c = co_await Connect(SocketAddress::Ipv4Loopback(0));
  if (!c.ok()) co_return c.status().ToString();
  absl::StatusOr<size_t> sent = co_await c->client.WriteAll("abc");
  EXPECT_EQ(sent.value_or(0), 3u) << sent.status();
  sent = co_await c->client.WriteSome("de");
  EXPECT_EQ(sent.value_or(0), 2u) << sent.status();
  c->client.Close();
  std::string received;
  char buffer[16];
  while (true) {
    absl::StatusOr<size_t> n = co_await c->server.ReadSome(buffer);
    if (!n.ok() || *n == 0) break;
    received.append(buffer, *n);
  }
  co_return received;
}

TEST(StreamSocketTest, AStringLiteralIsWrittenWithoutItsNul) {
  EXPECT_EQ(RunTask(WriteALiteral()), "abcde");
}

// Sends `text` from client to server and back; returns what came back.
Task<std::string> RoundTrip(SocketAddress listen_at, std::string text) {
  absl::StatusOr<Connection> c = co_await Connect(listen_at);
  if (!c.ok()) co_return c.status().ToString();
  absl::StatusOr<size_t> sent = co_await c->client.WriteAll(text);
  EXPECT_TRUE(sent.ok()) << sent.status();
  std::string echo(text.size(), '\0');
  absl::StatusOr<size_t> got = co_await c->server.ReadExact(echo);
  EXPECT_TRUE(got.ok()) << got.status();
  sent = co_await c->server.WriteAll(echo);
  EXPECT_TRUE(sent.ok()) << sent.status();
  std::string back(text.size(), '\0');
  got = co_await c->client.ReadExact(back);
  EXPECT_TRUE(got.ok()) << got.status();
  co_return back;
}

TEST(StreamSocketTest, RoundTripOverIpv4) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(RoundTrip(MustParse("127.0.0.1:0"), "over ipv4")), "over ipv4");
}

TEST(StreamSocketTest, RoundTripOverIpv6) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(RoundTrip(MustParse("[::1]:0"), "over ipv6")), "over ipv6");
}

TEST(StreamSocketTest, RoundTripOverUnixAbstractName) {
  FdLeakCheck leaks;
  const std::string name = absl::StrCat("unix:@conet-tcp-test-", ::getpid());
  EXPECT_EQ(RunTask(RoundTrip(MustParse(name), "abstract")), "abstract");
}

// A fresh directory for socket files, removed with its content.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/conet-test-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::system(absl::StrCat("rm -rf ", path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(StreamSocketTest, RoundTripOverUnixPathAndRemovesTheSocketFile) {
  FdLeakCheck leaks;
  TempDir dir;
  const std::string path = dir.path() + "/echo.sock";
  EXPECT_EQ(RunTask(RoundTrip(MustParse("unix:" + path), "path")), "path");
  EXPECT_FALSE(Exists(path)) << "the listener left its socket file behind";
  EXPECT_FALSE(Exists(path + ".lock")) << "the listener left its lock file behind";
}

Task<void> BindTwice(std::string path) {
  const SocketAddress address = MustParse("unix:" + path);
  absl::StatusOr<StreamListener> first = StreamListener::Bind(address);
  EXPECT_TRUE(first.ok()) << first.status();
  absl::StatusOr<StreamListener> second = StreamListener::Bind(address);
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("Address already in use"));
  EXPECT_THAT(second.status().message(), HasSubstr(path));
  // The refused second listener did not take the first one's file away.
  EXPECT_TRUE(Exists(path));
  co_return;
}

TEST(StreamSocketTest, UnixListenerRefusesANameALiveListenerHolds) {
  FdLeakCheck leaks;
  TempDir dir;
  RunTask(BindTwice(dir.path() + "/live.sock"));
}

TEST(StreamSocketTest, UnixListenerRefusesALiveNameAndReplacesAStaleFile) {
  FdLeakCheck leaks;
  TempDir dir;
  const std::string path = dir.path() + "/stale.sock";
  // Simulate a crashed server: a bound socket file with nobody listening.
  {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::snprintf(un.sun_path, sizeof(un.sun_path), "%s", path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)), 0);
    ::close(fd);
  }
  ASSERT_TRUE(Exists(path));
  EXPECT_EQ(RunTask(RoundTrip(MustParse("unix:" + path), "reclaimed")), "reclaimed");
}

Task<absl::Status> ConnectTo(std::string target) {
  absl::StatusOr<StreamSocket> stream = co_await StreamSocket::Connect(std::move(target));
  co_return stream.status();
}

// Returns a loopback port nobody listens on (bound, then closed).
uint16_t ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&in), sizeof(in)), 0);
  socklen_t len = sizeof(in);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&in), &len);
  ::close(fd);
  return ntohs(in.sin_port);
}

TEST(StreamSocketTest, ConnectRefusedNamesTheAddress) {
  FdLeakCheck leaks;
  const std::string target = absl::StrCat("127.0.0.1:", ClosedPort());
  absl::Status status = RunTask(ConnectTo(target));
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("connect to " + target));
  EXPECT_THAT(status.message(), HasSubstr("Connection refused"));
}

Task<std::string> ConnectByName() {
  // Listening on 127.0.0.1 only: if "localhost" gives ::1 first, that
  // address is refused and the next one must be tried.
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(listener.ok()) << listener.status();
  const std::string target = absl::StrCat("localhost:", listener->address().port());
  auto [client, server] = co_await WhenAll(StreamSocket::Connect(target), listener->Accept());
  if (!client.ok()) co_return client.status().ToString();
  EXPECT_TRUE(server.ok()) << server.status();
  absl::StatusOr<SocketAddress> peer = client->PeerAddress();
  co_return peer.ok() ? peer->ToString() : peer.status().ToString();
}

TEST(StreamSocketTest, ConnectResolvesANameAndTriesEachAddress) {
  FdLeakCheck leaks;
  EXPECT_THAT(RunTask(ConnectByName()), HasSubstr("127.0.0.1:"));
}

TEST(StreamSocketTest, ConnectToEveryFailingAddressListsEachReason) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(ConnectTo(absl::StrCat("localhost:", ClosedPort())));
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("Connection refused"));
}

// Fills a UNIX listener's accept queue (backlog 0 holds one connection), so
// a further connect gets EAGAIN, and checks that Connect keeps retrying
// until its deadline.
Task<absl::Status> ConnectToFullUnixListener(std::string name) {
  const SocketAddress address = MustParse(name);
  ListenOptions options;
  options.backlog = 0;
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(address, options);
  EXPECT_TRUE(listener.ok()) << listener.status();
  std::vector<UniqueFd> queued;
  for (int i = 0; i < 8; ++i) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (::connect(fd.fd(), address.data(), address.size()) != 0) {
      EXPECT_EQ(errno, EAGAIN);
      break;
    }
    queued.push_back(std::move(fd));
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<StreamSocket> stream =
      co_await StreamSocket::Connect(address, Within(absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  co_return stream.status();
}

TEST(StreamSocketTest, ConnectRetriesAFullUnixBacklogUntilTheDeadline) {
  FdLeakCheck leaks;
  absl::Status status =
      RunTask(ConnectToFullUnixListener(absl::StrCat("unix:@conet-full-", ::getpid())));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("connect to unix:@conet-full-"));
}

// Reads until end of stream, in small pieces.
Task<std::string> ReadToEnd(StreamSocket* stream) {
  std::string all;
  char buffer[4];
  while (true) {
    absl::StatusOr<size_t> n = co_await stream->ReadSome(buffer);
    if (!n.ok()) co_return n.status().ToString();
    if (*n == 0) co_return all;
    all.append(buffer, *n);
  }
}

Task<std::string> HalfClose() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return c.status().ToString();
  co_await c->client.WriteAll(std::string("request"));
  EXPECT_TRUE(c->client.ShutdownWrite().ok());
  // The server reads to end of stream, then can still answer.
  std::string request = co_await ReadToEnd(&c->server);
  co_await c->server.WriteAll(std::string("reply to ") + request);
  c->server.Close();
  co_return co_await ReadToEnd(&c->client);
}

TEST(StreamSocketTest, ShutdownWriteHalfCloses) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(HalfClose()), "reply to request");
}

Task<absl::Status> ReadExactPastEnd() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return c.status();
  co_await c->client.WriteAll(std::string("abc"));
  c->client.Close();
  std::string buffer(10, '\0');
  absl::StatusOr<size_t> n = co_await c->server.ReadExact(buffer);
  EXPECT_EQ(buffer.substr(0, 3), "abc");
  co_return n.status();
}

TEST(StreamSocketTest, ReadExactReportsAnEarlyEnd) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(ReadExactPastEnd());
  EXPECT_TRUE(absl::IsOutOfRange(status)) << status;
  EXPECT_THAT(status.message(), HasSubstr("after 3 of 10 bytes"));
}

std::string Pattern(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>((i * 131 + i / 251) & 0xff);
  return data;
}

Task<std::string> ReadSlowly(StreamSocket* stream, size_t size) {
  std::string got;
  std::vector<char> buffer(7919);
  while (got.size() < size) {
    co_await Sleep(absl::Microseconds(200));
    absl::StatusOr<size_t> n = co_await stream->ReadSome(buffer);
    if (!n.ok() || *n == 0) break;
    got.append(buffer.data(), *n);
  }
  co_return got;
}

Task<absl::StatusOr<size_t>> WriteAllOf(StreamSocket* stream, std::string data) {
  co_return co_await stream->WriteAll(data);
}

// A file holding `data`, unlinked at once: only the descriptor names it.
UniqueFd TemporaryFile(const std::string& data) {
  char path[] = "/tmp/conet_sendfile_XXXXXX";
  UniqueFd file(::mkostemp(path, O_CLOEXEC));
  EXPECT_TRUE(file.is_open()) << std::strerror(errno);
  ::unlink(path);
  EXPECT_EQ(::write(file.fd(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  return file;
}

Task<absl::StatusOr<size_t>> SendFileOf(StreamSocket* stream, int file_fd, off_t* offset,
                                        size_t count) {
  co_return co_await stream->SendFile(file_fd, *offset, count);
}

Task<void> SendFileRoundTrip() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(Connection c, co_await Connect(MustParse("127.0.0.1:0")));
  // Several megabytes from an offset: the socket fills and the send waits.
  const std::string data = Pattern(6 << 20);
  UniqueFd file = TemporaryFile(data);
  off_t offset = 1000;
  const size_t count = data.size() - 2000;
  auto [sent, got] = co_await WhenAll(SendFileOf(&c.client, file.fd(), &offset, count),
                                      ReadSlowly(&c.server, count));
  CONET_CO_ASSERT_OK(sent);
  EXPECT_EQ(*sent, count);
  EXPECT_EQ(offset, static_cast<off_t>(data.size() - 1000));
  EXPECT_TRUE(got == data.substr(1000, count)) << "bytes differ";
  // Past the end of the file: the transfer stops there and says so.
  off_t near_end = static_cast<off_t>(data.size() - 10);
  auto [short_send, tail] =
      co_await WhenAll(SendFileOf(&c.client, file.fd(), &near_end, 100), ReadSlowly(&c.server, 10));
  EXPECT_TRUE(absl::IsOutOfRange(short_send.status())) << short_send.status();
  EXPECT_THAT(short_send.status().message(), HasSubstr("90 of 100 bytes not sent"));
  EXPECT_EQ(near_end, static_cast<off_t>(data.size()));
  EXPECT_EQ(tail, data.substr(data.size() - 10));
  // One sendfile at most: a partial count, and the offset moves with it.
  off_t start = 0;
  absl::StatusOr<size_t> some = co_await c.client.SendFileSome(file.fd(), start, data.size());
  CONET_CO_ASSERT_OK(some);
  EXPECT_GT(*some, 0u);
  EXPECT_LT(*some, data.size());
  EXPECT_EQ(start, static_cast<off_t>(*some));
}

Task<absl::StatusOr<size_t>> SendFileAfterOf(StreamSocket* stream, std::string head, int file_fd,
                                             off_t* offset, size_t count) {
  co_return co_await stream->SendFileAfter(head, file_fd, *offset, count);
}

// A head and then a file body, as a response goes out; an empty body sends
// the head alone (not held back by MSG_MORE).
Task<void> SendFileAfterAHead() {
  CONET_CO_ASSERT_OK_AND_ASSIGN(Connection c, co_await Connect(MustParse("127.0.0.1:0")));
  const std::string data = Pattern(3 << 20);
  UniqueFd file = TemporaryFile(data);
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n";
  off_t offset = 0;
  auto [sent, got] =
      co_await WhenAll(SendFileAfterOf(&c.client, head, file.fd(), &offset, data.size()),
                       ReadSlowly(&c.server, head.size() + data.size()));
  CONET_CO_ASSERT_OK(sent);
  EXPECT_EQ(*sent, data.size());
  EXPECT_TRUE(got == head + data) << "bytes differ";
  off_t none = 0;
  auto [empty, alone] = co_await WhenAll(
      SendFileAfterOf(&c.client, "HEAD ONLY", file.fd(), &none, 0), ReadSlowly(&c.server, 9));
  CONET_CO_ASSERT_OK(empty);
  EXPECT_EQ(alone, "HEAD ONLY");
  EXPECT_EQ(none, 0);
}

TEST(StreamSocketTest, SendFileAfterSendsTheHeadThenTheFile) {
  FdLeakCheck leaks;
  RunTask(SendFileAfterAHead());
}

Task<void> SendFileToAResetPeer(int file_fd) {
  CONET_CO_ASSERT_OK_AND_ASSIGN(Connection c, co_await Connect(MustParse("127.0.0.1:0")));
  const linger reset{.l_onoff = 1, .l_linger = 0};
  ::setsockopt(c.server.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  c.server.Close();  // an RST: the client's sends fail, the second with EPIPE
  absl::Status last;
  for (int i = 0; i < 10; ++i) {
    off_t offset = 0;
    absl::StatusOr<size_t> sent = co_await c.client.SendFile(file_fd, offset, 4096);
    if (sent.ok()) continue;
    last = sent.status();
    if (absl::StrContains(last.message(), "Broken pipe")) break;
  }
  EXPECT_THAT(last.message(), HasSubstr("Broken pipe")) << last;
}

// With SIGPIPE at its default action, a sendfile to a reset peer would end
// the process; SendFile yields EPIPE instead.
TEST(StreamSocketTest, SendFileToAResetPeerIsAnErrorNotSigpipe) {
  FdLeakCheck leaks;
  UniqueFd file = TemporaryFile(std::string(4096, 'x'));
  const auto previous = ::signal(SIGPIPE, SIG_DFL);
  RunTask(SendFileToAResetPeer(file.fd()));
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "a SIGPIPE was left pending";
  ::signal(SIGPIPE, previous);
}

TEST(StreamSocketTest, SendFileSendsFromAnOffsetAndReportsProgress) {
  FdLeakCheck leaks;
  RunTask(SendFileRoundTrip());
}

// A blocking connect from outside the loop: on loopback it returns once the
// kernel has queued the connection on the listener.
UniqueFd ConnectBlocking(const SocketAddress& address) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(fd.fd(), address.data(), address.size()), 0) << std::strerror(errno);
  return fd;
}

TEST(StreamSocketTest, TryAcceptTakesWhatIsQueuedWithoutWaiting) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener =
      StreamListener::Bind(MustParse("127.0.0.1:0"), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<StreamSocket> none = listener->TryAccept();
  EXPECT_TRUE(absl::IsUnavailable(none.status())) << none.status();
  EXPECT_THAT(none.status().message(), HasSubstr("no connection queued"));
  UniqueFd first = ConnectBlocking(listener->address());
  UniqueFd second = ConnectBlocking(listener->address());
  absl::StatusOr<StreamSocket> a = listener->TryAccept();
  absl::StatusOr<StreamSocket> b = listener->TryAccept();
  EXPECT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE(absl::IsUnavailable(listener->TryAccept().status()));
}

Task<bool> BackPressure() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return false;
  const std::string data = Pattern(4 << 20);  // far more than socket buffers
  auto [sent, got] =
      co_await WhenAll(WriteAllOf(&c->client, data), ReadSlowly(&c->server, data.size()));
  EXPECT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent.value_or(0), data.size());
  co_return got == data;
}

TEST(StreamSocketTest, WriteAllWaitsForASlowReaderAndLosesNothing) {
  FdLeakCheck leaks;
  EXPECT_TRUE(RunTask(BackPressure()));
}

Task<std::string> GatherScatter() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return c.status().ToString();
  std::string a = "scatter", b = "/", d = "gather";
  iovec out[] = {{a.data(), a.size()}, {nullptr, 0}, {b.data(), b.size()}, {d.data(), d.size()}};
  absl::StatusOr<size_t> sent = co_await c->client.WriteAllV(out);
  EXPECT_EQ(sent.value_or(0), a.size() + b.size() + d.size());
  char first[8] = {}, second[8] = {};
  iovec in[] = {{first, 7}, {second, 7}};
  absl::StatusOr<size_t> got = co_await c->server.ReadSomeV(in);
  EXPECT_TRUE(got.ok()) << got.status();
  std::string all = std::string(first, std::min<size_t>(*got, 7));
  if (*got > 7) all.append(second, *got - 7);
  co_return all;
}

TEST(StreamSocketTest, GatherWriteAndScatterRead) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(GatherScatter()), "scatter/gather");
}

Task<absl::Status> WriteToResetPeer() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return c.status();
  // Closing with SO_LINGER {on, 0} sends a reset.
  linger reset{1, 0};
  ::setsockopt(c->server.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  c->server.Close();
  // The first failing send reports the reset (ECONNRESET); the ones after
  // it hit EPIPE, which raises SIGPIPE unless MSG_NOSIGNAL is set.
  const std::string chunk(64 << 10, 'x');
  absl::Status first_error;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<size_t> sent = co_await c->client.WriteAll(chunk);
    if (!sent.ok() && first_error.ok()) first_error = sent.status();
  }
  co_return first_error;
}

TEST(StreamSocketTest, WritingToAResetPeerIsAnErrorNotSigpipe) {
  FdLeakCheck leaks;
  // Bazel starts tests with SIGPIPE ignored; a real program has the default
  // action, which kills it.
  std::signal(SIGPIPE, SIG_DFL);
  absl::Status status = RunTask(WriteToResetPeer());
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(),
              ::testing::AnyOf(HasSubstr("Broken pipe"), HasSubstr("reset by peer")));
  EXPECT_THAT(status.message(), HasSubstr("send on fd "));
}

Task<void> CancelThenReuse() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(c.ok()) << c.status();
  char buffer[16];
  std::stop_source stop;
  stop.request_stop();
  absl::StatusOr<size_t> n = co_await c->server.ReadSome(buffer, stop.get_token());
  EXPECT_TRUE(absl::IsCancelled(n.status())) << n.status();
  n = co_await c->server.ReadSome(buffer, Within(absl::Milliseconds(5)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(n.status())) << n.status();
  // The stream is still usable: nothing was left registered.
  co_await c->client.WriteAll(std::string("ok"));
  n = co_await c->server.ReadSome(buffer, Within(absl::Seconds(5)));
  EXPECT_EQ(n.value_or(0), 2u);
}

TEST(StreamSocketTest, CancelledReadLeavesTheStreamUsable) {
  FdLeakCheck leaks;
  RunTask(CancelThenReuse());
}

Task<void> AcceptCancelled() {
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<StreamSocket> none = co_await listener->Accept(Within(absl::Milliseconds(5)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(none.status())) << none.status();
  EXPECT_THAT(none.status().message(), HasSubstr(listener->address().ToString()));
  auto [client, server] =
      co_await WhenAll(StreamSocket::Connect(listener->address()), listener->Accept());
  EXPECT_TRUE(client.ok() && server.ok());
}

TEST(StreamSocketTest, AcceptHonoursItsDeadline) {
  FdLeakCheck leaks;
  RunTask(AcceptCancelled());
}

Task<void> SecondPendingRead() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(c.ok());
  char a[4], b[4];
  auto [first, second] = co_await WhenAll(
      [](StreamSocket* s, char* buf) -> Task<absl::StatusOr<size_t>> {
        co_return co_await s->ReadSome(std::span<char>(buf, 4), Within(absl::Milliseconds(20)));
      }(&c->server, a),
      [](StreamSocket* s, char* buf) -> Task<absl::StatusOr<size_t>> {
        co_return co_await s->ReadSome(std::span<char>(buf, 4));
      }(&c->server, b));
  EXPECT_TRUE(absl::IsDeadlineExceeded(first.status())) << first.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr("already has a pending read"));
}

// Sends `text` on the UNIX socket `fd` with one descriptor attached (a
// duplicate of `fd`, closed here once sent); returns whether it all went.
bool SendWithADescriptor(int fd, const std::string& text) {
  UniqueFd passed(::dup(fd));
  iovec iov{const_cast<char*>(text.data()), text.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  const int raw = passed.fd();
  std::memcpy(CMSG_DATA(cmsg), &raw, sizeof(int));
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
}

// The read hint (AsyncFd::SetShortReadDrains): on TCP a short read means the
// receive queue is empty, so the next read waits for an edge instead of
// trying. These are the cases where a short read leaves something behind
// and the next read must still see it at once.

// Reads with ReadSome into 64-byte pieces until `want` bytes, end of
// stream or an error, each read bounded by a deadline; yields what was
// read, or the error.
Task<absl::StatusOr<std::string>> ReadPieces(StreamSocket* stream, size_t want) {
  std::string all;
  char piece[64];
  while (all.size() < want) {
    absl::StatusOr<size_t> n = co_await stream->ReadSome(piece, Within(absl::Seconds(5)));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return all;
    all.append(piece, *n);
  }
  co_return all;
}

// Runs `read`, and once it is waiting sends everything at once so that one
// event carries it all (`send_all` uses plain syscalls, with no yield).
// Yields what `read` yields.
template <typename SendAll>
Task<absl::StatusOr<std::string>> ReadWhileSending(Task<absl::StatusOr<std::string>> read,
                                                   SendAll send_all) {
  auto [got, sent] = co_await WhenAll(std::move(read), [](SendAll send) -> Task<bool> {
    co_await Yield();  // the read is waiting now
    co_return send();
  }(std::move(send_all)));
  EXPECT_TRUE(sent);
  co_return got;
}

// Reads pieces (ReadPieces) until `want` bytes or the end, while sending.
template <typename SendAll>
Task<absl::StatusOr<std::string>> ReadWhatArrivesAtOnce(StreamSocket* reader, size_t want,
                                                        SendAll send_all) {
  co_return co_await ReadWhileSending(ReadPieces(reader, want), std::move(send_all));
}

Task<absl::StatusOr<std::string>> DataThenEnd() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return c.status();
  const int fd = c->client.fd();
  // The event that wakes the reader has both the data and the end (FIN):
  // the short read of "hello" must not hide the end that follows it.
  auto send = [fd] {
    return ::send(fd, "hello", 5, MSG_NOSIGNAL) == 5 && ::shutdown(fd, SHUT_WR) == 0;
  };
  co_return co_await ReadWhatArrivesAtOnce(&c->server, SIZE_MAX, send);
}

TEST(StreamSocketTest, AShortReadBeforeTheEndDoesNotHideTheEnd) {
  FdLeakCheck leaks;
  absl::StatusOr<std::string> got = RunTask(DataThenEnd());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "hello");
}

Task<absl::StatusOr<std::string>> DataAroundUrgentByte() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  if (!c.ok()) co_return c.status();
  const int fd = c->client.fd();
  // A read stops short at the urgent mark; "de" is still queued behind it.
  auto send = [fd] {
    return ::send(fd, "ab", 2, MSG_NOSIGNAL) == 2 &&
           ::send(fd, "c", 1, MSG_OOB | MSG_NOSIGNAL) == 1 &&
           ::send(fd, "de", 2, MSG_NOSIGNAL) == 2;
  };
  co_return co_await ReadWhatArrivesAtOnce(&c->server, 4, send);
}

TEST(StreamSocketTest, AShortReadAtTheUrgentMarkDoesNotStallTheRest) {
  FdLeakCheck leaks;
  absl::StatusOr<std::string> got = RunTask(DataAroundUrgentByte());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "abde");  // the urgent byte is out of band
}

Task<absl::StatusOr<std::string>> UnixDataBehindADescriptor(std::string name) {
  absl::StatusOr<Connection> c = co_await Connect(MustParse(name));
  if (!c.ok()) co_return c.status();
  const int fd = c->client.fd();
  // A UNIX stream read stops after a message that carried descriptors, so
  // on UNIX a short read proves nothing: "cd" must still arrive.
  auto send = [fd] {
    const bool ok = SendWithADescriptor(fd, "ab") && ::send(fd, "cd", 2, MSG_NOSIGNAL) == 2;
    return ok;
  };
  co_return co_await ReadWhatArrivesAtOnce(&c->server, 4, send);
}

TEST(StreamSocketTest, AShortReadOnAUnixStreamIsNotTakenAsDrained) {
  FdLeakCheck leaks;
  const std::string name = absl::StrCat("unix:@conet-tcp-hint-", ::getpid());
  absl::StatusOr<std::string> got = RunTask(UnixDataBehindADescriptor(name));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "abcd");
}

// ReadExact asks the kernel how much is left after each read (TCP_INQ, or
// SO_INQ on UNIX streams): a read that leaves nothing lets the next one wait
// for the edge. Each case below must still see everything, and the end.

// Reads exactly `want` bytes, then expects the end of the stream; yields
// the bytes, or the error.
Task<absl::StatusOr<std::string>> ReadExactThenEnd(StreamSocket* stream, size_t want) {
  std::string bytes(want, '\0');
  absl::StatusOr<size_t> got = co_await stream->ReadExact(bytes, Within(absl::Seconds(5)));
  if (!got.ok()) co_return got.status();
  char more[8];
  absl::StatusOr<size_t> end = co_await stream->ReadSome(more, Within(absl::Seconds(5)));
  if (!end.ok()) co_return end.status();
  if (*end != 0) co_return absl::InternalError("data after the expected end");
  co_return bytes;
}

template <typename SendAll>
Task<absl::StatusOr<std::string>> ReadExactOf(StreamSocket* reader, size_t want, SendAll send_all) {
  co_return co_await ReadWhileSending(ReadExactThenEnd(reader, want), std::move(send_all));
}

// Sends `first`, then `second` after a wait (each its own edge), then ends.
Task<absl::StatusOr<std::string>> ExactInTwoParts(std::string address) {
  absl::StatusOr<Connection> c = co_await Connect(MustParse(address));
  if (!c.ok()) co_return c.status();
  const int fd = c->client.fd();
  auto later = [](int to) -> Task<void> {
    co_await Sleep(absl::Milliseconds(20));
    EXPECT_EQ(::send(to, "cdef", 4, MSG_NOSIGNAL), 4);
    EXPECT_EQ(::shutdown(to, SHUT_WR), 0);
  };
  EXPECT_EQ(::send(fd, "ab", 2, MSG_NOSIGNAL), 2);
  std::string head(2, '\0');
  // All that is queued: the kernel reports nothing left.
  absl::StatusOr<size_t> got = co_await c->server.ReadExact(head, Within(absl::Seconds(5)));
  if (!got.ok()) co_return got.status();
  auto [rest, done] = co_await WhenAll(ReadExactThenEnd(&c->server, 4), later(fd));
  if (!rest.ok()) co_return rest.status();
  co_return head + *rest;
}

// Runs `exchange` over loopback TCP and over a UNIX stream with the
// abstract name `unix_name`, and expects each to yield "abcdef".
void ExpectAbcdefOverTcpAndUnix(Task<absl::StatusOr<std::string>> (*exchange)(std::string),
                                const std::string& unix_name) {
  for (const std::string& address :
       {std::string("127.0.0.1:0"), absl::StrCat("unix:@", unix_name, "-", ::getpid())}) {
    absl::StatusOr<std::string> got = RunTask(exchange(address));
    ASSERT_TRUE(got.ok()) << address << ": " << got.status();
    EXPECT_EQ(*got, "abcdef") << address;
  }
}

TEST(StreamSocketTest, ReadExactThatEmptiesTheQueueStillSeesWhatComesNext) {
  FdLeakCheck leaks;
  ExpectAbcdefOverTcpAndUnix(ExactInTwoParts, "conet-tcp-inq");
}

// The reader waits for one byte; "abcdef" arrives in one event; the byte
// read leaves five queued, which the next ReadExact must take at once.
Task<absl::StatusOr<std::string>> ExactLeavingBytesQueued(std::string address) {
  absl::StatusOr<Connection> c = co_await Connect(MustParse(address));
  if (!c.ok()) co_return c.status();
  auto reader = [](StreamSocket* stream) -> Task<absl::StatusOr<std::string>> {
    std::string all(6, '\0');
    std::span<char> first(all.data(), 1);
    std::span<char> rest(all.data() + 1, 5);
    absl::StatusOr<size_t> got = co_await stream->ReadExact(first, Within(absl::Seconds(5)));
    if (!got.ok()) co_return got.status();
    got = co_await stream->ReadExact(rest, Within(absl::Seconds(5)));
    if (!got.ok()) co_return got.status();
    co_return all;
  };
  const int fd = c->client.fd();
  auto send = [fd] { return ::send(fd, "abcdef", 6, MSG_NOSIGNAL) == 6; };
  co_return co_await ReadWhileSending(reader(&c->server), send);
}

TEST(StreamSocketTest, ReadExactLeavingBytesQueuedTakesThemAtOnce) {
  FdLeakCheck leaks;
  ExpectAbcdefOverTcpAndUnix(ExactLeavingBytesQueued, "conet-tcp-left");
}

Task<absl::StatusOr<std::string>> UnixExactAcrossADescriptor(std::string name) {
  absl::StatusOr<Connection> c = co_await Connect(MustParse(name));
  if (!c.ok()) co_return c.status();
  const int fd = c->client.fd();
  // "ab" carries a descriptor: the read stops after it, the descriptor is
  // closed (a stream read takes bytes only), and "cd" follows.
  auto send = [fd] {
    const bool ok = SendWithADescriptor(fd, "ab") && ::send(fd, "cd", 2, MSG_NOSIGNAL) == 2 &&
                    ::shutdown(fd, SHUT_WR) == 0;
    return ok;
  };
  co_return co_await ReadExactOf(&c->server, 4, send);
}

TEST(StreamSocketTest, ReadExactOnAUnixStreamClosesPassedDescriptorsAndReadsOn) {
  FdLeakCheck leaks;  // the passed descriptor must not stay open here
  const std::string name = absl::StrCat("unix:@conet-tcp-exact-", ::getpid());
  absl::StatusOr<std::string> got = RunTask(UnixExactAcrossADescriptor(name));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "abcd");
}

Task<void> ReadsOnMovedAndEmpty() {
  absl::StatusOr<Connection> c = co_await Connect(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(::send(c->client.fd(), "hi", 2, MSG_NOSIGNAL), 2);
  char buffer[16];
  // A short read: the next read on this stream would wait for an edge...
  absl::StatusOr<size_t> n = co_await c->server.ReadSome(buffer, Within(absl::Seconds(5)));
  EXPECT_TRUE(n.ok() && *n == 2) << n.status();
  // ...except one into an empty buffer, which yields 0 at once.
  n = co_await c->server.ReadSome(std::span<char>(), Within(absl::Seconds(5)));
  EXPECT_TRUE(n.ok() && *n == 0) << n.status();
  n = co_await c->server.ReadExact(std::span<char>(), Within(absl::Seconds(5)));
  EXPECT_TRUE(n.ok() && *n == 0) << n.status();
  // A stream moved from has nothing to read: an error, not a crash.
  StreamSocket moved = std::move(c->server);
  n = co_await c->server.ReadSome(buffer);  // NOLINT(bugprone-use-after-move)
  EXPECT_FALSE(n.ok());
  EXPECT_TRUE(moved.is_open());
}

TEST(StreamSocketTest, EmptyAndMovedFromReadsEndAtOnce) {
  FdLeakCheck leaks;
  RunTask(ReadsOnMovedAndEmpty());
}

// A record socket adopted as a stream: each read returns one record, so a
// short read proves nothing and the second record must still be read.
Task<absl::StatusOr<std::string>> TwoRecords(std::pair<UniqueFd, UniqueFd> pair) {
  const int sender = pair.first.fd();
  absl::StatusOr<StreamSocket> stream = StreamSocket::Adopt(std::move(pair.second));
  if (!stream.ok()) co_return stream.status();
  auto send = [sender] {
    return ::send(sender, "one", 3, MSG_NOSIGNAL) == 3 &&
           ::send(sender, "two", 3, MSG_NOSIGNAL) == 3;
  };
  co_return co_await ReadWhatArrivesAtOnce(&*stream, 6, send);
}

TEST(StreamSocketTest, ARecordSocketAdoptedAsAStreamReadsEveryRecord) {
  FdLeakCheck leaks;
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  absl::StatusOr<std::string> got = RunTask(TwoRecords({UniqueFd(fds[0]), UniqueFd(fds[1])}));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "onetwo");
}

TEST(StreamSocketTest, ASecondPendingReadIsRefused) {
  FdLeakCheck leaks;
  RunTask(SecondPendingRead());
}

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);
  ::getsockopt(fd, level, name, &value, &len);
  return value;
}

Task<void> Options() {
  absl::StatusOr<Connection> tcp = co_await Connect(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(tcp.ok());
  EXPECT_TRUE(tcp->client.SetNoDelay(true).ok());
  EXPECT_EQ(IntOption(tcp->client.fd(), IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_TRUE(tcp->client.SetKeepAlive(true, absl::Seconds(30), absl::Seconds(7), 3).ok());
  EXPECT_EQ(IntOption(tcp->client.fd(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(IntOption(tcp->client.fd(), IPPROTO_TCP, TCP_KEEPIDLE), 30);
  EXPECT_EQ(IntOption(tcp->client.fd(), IPPROTO_TCP, TCP_KEEPINTVL), 7);
  EXPECT_EQ(IntOption(tcp->client.fd(), IPPROTO_TCP, TCP_KEEPCNT), 3);
  absl::StatusOr<SocketAddress> local = tcp->client.LocalAddress();
  absl::StatusOr<SocketAddress> peer = tcp->server.PeerAddress();
  EXPECT_TRUE(local.ok() && peer.ok());
  EXPECT_EQ(*local, *peer);
  // Accepted and connected sockets are close-on-exec and non-blocking.
  for (int fd : {tcp->client.fd(), tcp->server.fd(), tcp->listener.fd()}) {
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << fd;
    EXPECT_TRUE(::fcntl(fd, F_GETFL) & O_NONBLOCK) << fd;
  }
  absl::StatusOr<Connection> unix_conn =
      co_await Connect(MustParse(absl::StrCat("unix:@conet-opt-", ::getpid())));
  EXPECT_TRUE(unix_conn.ok());
  absl::Status no_delay = unix_conn->client.SetNoDelay(true);
  EXPECT_TRUE(absl::IsFailedPrecondition(no_delay)) << no_delay;
}

TEST(StreamSocketTest, SocketOptionsAndAddresses) {
  FdLeakCheck leaks;
  RunTask(Options());
}

// Sockets from systemd arrive blocking; an adopted listener must not block
// the loop in accept4.
Task<std::pair<absl::Status, absl::Status>> AdoptBlockingAndNonListening() {
  UniqueFd blocking(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const SocketAddress any = SocketAddress::Ipv4Loopback(0);
  EXPECT_EQ(::bind(blocking.fd(), any.data(), any.size()), 0);
  EXPECT_EQ(::listen(blocking.fd(), 8), 0);
  absl::StatusOr<StreamListener> listener = StreamListener::Adopt(std::move(blocking));
  EXPECT_TRUE(listener.ok()) << listener.status();
  absl::StatusOr<StreamSocket> none = co_await listener->Accept(Within(absl::Milliseconds(20)));
  UniqueFd not_listening(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  absl::StatusOr<StreamListener> refused = StreamListener::Adopt(std::move(not_listening));
  co_return std::make_pair(none.status(), refused.status());
}

TEST(StreamSocketTest, AdoptMakesAListenerNonBlockingAndRefusesOneThatIsNot) {
  FdLeakCheck leaks;
  auto [accepted, refused] = RunTask(AdoptBlockingAndNonListening());
  EXPECT_TRUE(absl::IsDeadlineExceeded(accepted)) << accepted;
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_THAT(refused.message(), HasSubstr("not listening"));
}

// Lowers the descriptor limit so accept4 fails with EMFILE while connections
// wait in the queue; the listener must report it, back off and, once
// descriptors are free, accept the connections that waited.
Task<void> StarvedAccept() {
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(MustParse("127.0.0.1:0"));
  EXPECT_TRUE(listener.ok());
  const SocketAddress address = listener->address();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_EQ(::connect(clients.back().fd(), address.data(), address.size()), 0);
  }
  rlimit old_limit;
  ::getrlimit(RLIMIT_NOFILE, &old_limit);
  std::vector<UniqueFd> filler;
  while (true) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    filler.emplace_back(fd);
    if (filler.size() == 64) {  // then cap the limit at what is open now
      rlimit low = old_limit;
      low.rlim_cur = static_cast<rlim_t>(fd + 1);
      ::setrlimit(RLIMIT_NOFILE, &low);
    }
  }
  // The pause counts from the failure, inside the first Accept: time it
  // from before that call.
  const absl::Time start = absl::Now();
  absl::StatusOr<StreamSocket> starved = co_await listener->Accept();
  EXPECT_TRUE(absl::IsResourceExhausted(starved.status())) << starved.status();
  EXPECT_THAT(starved.status().message(), HasSubstr("Too many open files"));
  EXPECT_THAT(starved.status().message(), HasSubstr(address.ToString()));
  EXPECT_EQ(listener->backoff(), absl::Milliseconds(5));
  starved = co_await listener->Accept();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(5)) << "retried without waiting";
  EXPECT_TRUE(absl::IsResourceExhausted(starved.status()));
  EXPECT_EQ(listener->backoff(), absl::Milliseconds(10));
  filler.clear();
  ::setrlimit(RLIMIT_NOFILE, &old_limit);
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<StreamSocket> accepted = co_await listener->Accept(Within(absl::Seconds(5)));
    EXPECT_TRUE(accepted.ok()) << accepted.status();
  }
  EXPECT_EQ(listener->backoff(), absl::ZeroDuration());
}

TEST(StreamSocketTest, AcceptBacksOffWhenOutOfDescriptorsAndKeepsTheQueue) {
  FdLeakCheck leaks;
  RunTask(StarvedAccept());
}

}  // namespace
}  // namespace conet
