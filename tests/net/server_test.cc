#include "net/server.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/sync.h"
#include "net/testing.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "net/when_any.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

SocketAddress Loopback() { return SocketAddress::Ipv4Loopback(0); }

// A blocking connect from outside any loop: on loopback it returns once the
// kernel has queued the connection on the listener.
UniqueFd ConnectBlocking(const SocketAddress& address) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::connect(fd.fd(), address.data(), address.size()), 0) << std::strerror(errno);
  timeval timeout{.tv_sec = 10, .tv_usec = 0};  // a bound for the reads below
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

// Reads until end of stream (or an error: then what came before it).
std::string ReadAll(const UniqueFd& fd) {
  std::string got;
  char buffer[256];
  while (true) {
    const ssize_t n = ::read(fd.fd(), buffer, sizeof buffer);
    if (n <= 0) return got;
    got.append(buffer, static_cast<size_t>(n));
  }
}

Task<void> SayHello(StreamSocket stream) { (void)co_await stream.WriteAll("hello\n"); }

Task<void> Echo(StreamSocket stream) {
  char buffer[256];
  while (true) {
    absl::StatusOr<size_t> n = co_await stream.ReadSome(buffer);
    if (!n.ok() || *n == 0) co_return;
    absl::StatusOr<size_t> sent = co_await stream.WriteAll(std::span<const char>(buffer, *n));
    if (!sent.ok()) co_return;
  }
}

// Connections the kernel queued before the stop are served, not reset: a
// stop that comes before Serve has accepted anything still serves them.
TEST(ServeTest, ConnectionsQueuedAtTheStopAreServed) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(Loopback(), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 5; ++i) clients.push_back(ConnectBlocking(listener->address()));
  std::stop_source stop;
  stop.request_stop();
  ServeOptions options;
  (*loop)->BlockOn(Serve(std::move(*listener), SayHello, options, stop.get_token()));
  for (const UniqueFd& client : clients) EXPECT_EQ(ReadAll(client), "hello\n");
}

// With SO_REUSEPORT each listener has its own queue; every one is served.
TEST(ServeTest, EveryReusePortListenersQueueIsServed) {
  FdLeakCheck leaks;
  absl::StatusOr<std::unique_ptr<LoopGroup>> group = LoopGroup::Create(2);
  ASSERT_TRUE(group.ok());
  absl::StatusOr<std::vector<StreamListener>> listeners = BindForEachLoop(Loopback(), **group);
  ASSERT_TRUE(listeners.ok()) << listeners.status();
  std::vector<UniqueFd> clients;
  // The kernel spreads these over both listeners' queues.
  for (int i = 0; i < 40; ++i) clients.push_back(ConnectBlocking((*listeners)[0].address()));
  std::stop_source stop;
  stop.request_stop();
  ServeOptions options;
  for (int i = 0; i < 2; ++i) {
    (*group)->loop(i).BlockOn(
        Serve(std::move((*listeners)[i]), SayHello, options, stop.get_token()));
  }
  for (const UniqueFd& client : clients) EXPECT_EQ(ReadAll(client), "hello\n");
}

TEST(ServeTest, OverTheCapAConnectionIsToldAndClosed) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(Loopback(), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  UniqueFd admitted = ConnectBlocking(listener->address());
  UniqueFd refused = ConnectBlocking(listener->address());
  ConnectionLimiter limiter(1);
  ServeOptions options;
  options.limiter = &limiter;
  options.over_limit_reply = "full\n";
  std::stop_source stop;
  stop.request_stop();
  (*loop)->BlockOn(Serve(std::move(*listener), SayHello, options, stop.get_token()));
  EXPECT_EQ(ReadAll(admitted), "hello\n");
  EXPECT_EQ(ReadAll(refused), "full\n");
  EXPECT_EQ(limiter.in_use(), 0);  // the handler's place was given back
}

// After the stop, an open connection is still served while new ones are
// refused; Serve returns once it closes.
Task<void> DrainWhileTalking(StreamListener listener) {
  const SocketAddress address = listener.address();
  std::stop_source stop;
  ServeOptions options;
  options.drain_timeout = absl::Seconds(30);
  auto client = [&]() -> Task<void> {
    CONET_CO_ASSERT_OK_AND_ASSIGN(StreamSocket stream, co_await StreamSocket::Connect(address));
    char buffer[8];
    CONET_CO_ASSERT_OK(co_await stream.WriteAll("a"));
    CONET_CO_ASSERT_OK(co_await stream.ReadExact(std::span(buffer, 1)));
    stop.request_stop();
    // Refused once Serve has closed the listener (bounded).
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (true) {
      absl::StatusOr<StreamSocket> late = co_await StreamSocket::Connect(address);
      if (!late.ok()) break;
      late->Close();
      if (absl::Now() > give_up) {
        ADD_FAILURE() << "new connections still accepted after the stop";
        co_return;
      }
      co_await Yield();
    }
    CONET_CO_ASSERT_OK(co_await stream.WriteAll("b"));
    CONET_CO_ASSERT_OK(co_await stream.ReadExact(std::span(buffer, 1)));
    EXPECT_EQ(buffer[0], 'b');
  };
  co_await WhenAll(Serve(std::move(listener), Echo, options, stop.get_token()), client());
}

TEST(ServeTest, DrainKeepsServingOpenConnectionsAndRefusesNewOnes) {
  FdLeakCheck leaks;
  auto run = []() -> Task<void> {
    CONET_CO_ASSERT_OK_AND_ASSIGN(StreamListener listener, StreamListener::Bind(Loopback()));
    co_await DrainWhileTalking(std::move(listener));
  };
  RunTask(run());
}

TEST(ServeTest, AtTheDrainDeadlineConnectionsAreStopped) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(Loopback(), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  UniqueFd silent = ConnectBlocking(listener->address());  // never sends, never closes
  std::stop_source stop;
  stop.request_stop();
  ServeOptions options;
  options.drain_timeout = absl::Milliseconds(50);
  const absl::Time start = absl::Now();
  (*loop)->BlockOn(Serve(std::move(*listener), Echo, options, stop.get_token()));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(45));
  EXPECT_LT(took, absl::Seconds(10));
  EXPECT_EQ(ReadAll(silent), "");  // end of stream: the handler was stopped
}

// Echoes each read after a pause: the drain's deadline finds it between a
// read and its write.
Task<void> SlowEcho(StreamSocket stream) {
  char buffer[256];
  while (true) {
    absl::StatusOr<size_t> n = co_await stream.ReadSome(buffer);
    if (!n.ok() || *n == 0) co_return;
    (void)co_await Sleep(absl::Milliseconds(150));
    absl::StatusOr<size_t> sent = co_await stream.WriteAll(std::span<const char>(buffer, *n));
    if (!sent.ok()) co_return;
  }
}

// At the deadline a connection's reads end, but its writes still go: the
// peer gets what the handler owed it, then end of stream.
TEST(ServeTest, AtTheDeadlineAConnectionStillWritesWhatItOwes) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(Loopback(), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  UniqueFd client = ConnectBlocking(listener->address());
  ASSERT_EQ(::send(client.fd(), "abc", 3, MSG_NOSIGNAL), 3);
  std::stop_source stop;
  stop.request_stop();
  ServeOptions options;
  options.drain_timeout = absl::Milliseconds(30);
  (*loop)->BlockOn(Serve(std::move(*listener), SlowEcho, options, stop.get_token()));
  EXPECT_EQ(ReadAll(client), "abc");
}

// Writes without end to a peer that never reads.
Task<void> Flood(StreamSocket stream) {
  const std::string chunk(65536, 'x');
  while ((co_await stream.WriteAll(chunk)).ok()) {
  }
}

TEST(ServeTest, AfterTheGraceAWriterToAPeerThatNeverReadsIsStopped) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(Loopback(), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  UniqueFd deaf = ConnectBlocking(listener->address());
  std::stop_source stop;
  stop.request_stop();
  ServeOptions options;
  options.drain_timeout = absl::Milliseconds(20);
  options.close_grace = absl::Milliseconds(50);
  const absl::Time start = absl::Now();
  (*loop)->BlockOn(Serve(std::move(*listener), Flood, options, stop.get_token()));
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(65));
  EXPECT_LT(took, absl::Seconds(10));
}

// end_drain (a second SIGTERM) ends a long drain at once.
Task<void> EndDrainSoon(std::stop_source* end_drain) {
  (void)co_await Sleep(absl::Milliseconds(30));
  end_drain->request_stop();
}

TEST(ServeTest, EndDrainEndsTheDrainAtOnce) {
  FdLeakCheck leaks;
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(Loopback(), {}, loop->get());
  ASSERT_TRUE(listener.ok()) << listener.status();
  UniqueFd silent = ConnectBlocking(listener->address());
  std::stop_source stop;
  stop.request_stop();
  std::stop_source end_drain;
  ServeOptions options;
  options.drain_timeout = absl::Seconds(60);
  options.close_grace = absl::Seconds(60);
  options.end_drain = end_drain.get_token();
  const absl::Time start = absl::Now();
  (*loop)->BlockOn(WhenAll(Serve(std::move(*listener), Echo, options, stop.get_token()),
                           EndDrainSoon(&end_drain)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(ReadAll(silent), "");
}

// Serve obeys the stop token of the task awaiting it too (WhenAny,
// WithTimeout, a TaskGroup): cancelled, it drains and returns rather than
// retrying its accept for ever.
Task<int> ServeUntilCancelled(StreamListener listener) {
  std::stop_source never;
  ServeOptions options;
  co_await Serve(std::move(listener), Echo, options, never.get_token());
  co_return 0;
}

Task<int> SleepBriefly() {
  (void)co_await Sleep(absl::Milliseconds(20));
  co_return 1;
}

TEST(ServeTest, TheAwaitingTasksStopEndsIt) {
  FdLeakCheck leaks;
  auto run = []() -> Task<void> {
    CONET_CO_ASSERT_OK_AND_ASSIGN(StreamListener listener, StreamListener::Bind(Loopback()));
    auto [index, result] =
        co_await WhenAny(ServeUntilCancelled(std::move(listener)), SleepBriefly());
    EXPECT_EQ(index, 1u);
  };
  RunTask(run());
}

TEST(IdleCancellationTest, ZeroMeansNoDeadline) {
  EXPECT_FALSE(IdleCancellation(absl::ZeroDuration()).has_deadline());
  const Cancellation soon = IdleCancellation(absl::Seconds(1));
  EXPECT_TRUE(soon.has_deadline());
  EXPECT_LE(soon.deadline(), absl::Now() + absl::Seconds(1));
}

}  // namespace
}  // namespace conet
