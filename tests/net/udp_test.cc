#include "net/udp.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::testing::HasSubstr;

Task<std::string> PingPong(std::string bind_text) {
  absl::StatusOr<SocketAddress> any = SocketAddress::Parse(bind_text);
  absl::StatusOr<UdpSocket> server = UdpSocket::Bind(*any);
  absl::StatusOr<UdpSocket> client = UdpSocket::Bind(*any);
  if (!server.ok() || !client.ok()) co_return "bind failed";
  absl::StatusOr<SocketAddress> server_address = server->LocalAddress();
  absl::StatusOr<SocketAddress> client_address = client->LocalAddress();
  EXPECT_NE(server_address->port(), 0);
  absl::StatusOr<size_t> sent = co_await client->SendTo(std::string("ping"), *server_address);
  EXPECT_EQ(sent.value_or(0), 4u);
  char buffer[64];
  absl::StatusOr<Datagram> got = co_await server->ReceiveFrom(buffer);
  if (!got.ok()) co_return got.status().ToString();
  EXPECT_EQ(got->from, *client_address);
  EXPECT_FALSE(got->truncated);
  co_await server->SendTo(std::string("pong:") + std::string(buffer, got->size), got->from);
  got = co_await client->ReceiveFrom(buffer, Within(absl::Seconds(5)));
  if (!got.ok()) co_return got.status().ToString();
  EXPECT_EQ(got->from, *server_address);
  co_return std::string(buffer, got->size);
}

TEST(UdpTest, SendToAndReceiveFromOverIpv4) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(PingPong("127.0.0.1:0")), "pong:ping");
}

TEST(UdpTest, SendToAndReceiveFromOverIpv6) {
  FdLeakCheck leaks;
  EXPECT_EQ(RunTask(PingPong("[::1]:0")), "pong:ping");
}

Task<Datagram> SendLongDatagram() {
  absl::StatusOr<UdpSocket> server = UdpSocket::Bind(SocketAddress::Ipv4Loopback(0));
  absl::StatusOr<SocketAddress> address = server->LocalAddress();
  absl::StatusOr<UdpSocket> client = UdpSocket::Connect(*address);
  EXPECT_TRUE(client.ok()) << client.status();
  co_await client->Send(std::string(100, 'x'));
  co_await client->Send(std::string("next"));
  char small[10];
  absl::StatusOr<Datagram> cut = co_await server->ReceiveFrom(small);
  EXPECT_TRUE(cut.ok()) << cut.status();
  // The rest of the long datagram is gone; the next one arrives whole.
  char buffer[64];
  absl::StatusOr<Datagram> next = co_await server->ReceiveFrom(buffer);
  EXPECT_EQ(std::string(buffer, next->size), "next");
  EXPECT_FALSE(next->truncated);
  co_return *cut;
}

TEST(UdpTest, ReceiveReportsTruncation) {
  FdLeakCheck leaks;
  Datagram cut = RunTask(SendLongDatagram());
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(cut.size, 10u);
  EXPECT_EQ(cut.full_size, 100u);
}

Task<absl::Status> ConnectedToNobody() {
  // Bind then close a socket to find a port with nobody behind it.
  absl::StatusOr<UdpSocket> gone = UdpSocket::Bind(SocketAddress::Ipv4Loopback(0));
  absl::StatusOr<SocketAddress> address = gone->LocalAddress();
  gone->Close();
  absl::StatusOr<UdpSocket> client = UdpSocket::Connect(*address);
  EXPECT_TRUE(client.ok()) << client.status();
  co_await client->Send(std::string("anyone?"));
  char buffer[16];
  absl::StatusOr<Datagram> got = co_await client->ReceiveFrom(buffer, Within(absl::Seconds(5)));
  co_return got.status();
}

TEST(UdpTest, ConnectedSocketSeesTheRefusal) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(ConnectedToNobody());
  EXPECT_THAT(status.message(), HasSubstr("Connection refused")) << status;
}

Task<absl::Status> ReceiveWithDeadline() {
  absl::StatusOr<UdpSocket> socket = UdpSocket::Bind(SocketAddress::Ipv4Loopback(0));
  char buffer[16];
  absl::StatusOr<Datagram> got =
      co_await socket->ReceiveFrom(buffer, Within(absl::Milliseconds(5)));
  co_return got.status();
}

TEST(UdpTest, ReceiveHonoursItsDeadline) {
  FdLeakCheck leaks;
  EXPECT_TRUE(absl::IsDeadlineExceeded(RunTask(ReceiveWithDeadline())));
}

Task<absl::Status> BindUnix() {
  co_return UdpSocket::Bind(*SocketAddress::Parse("unix:@conet-udp")).status();
}

TEST(UdpTest, BindRefusesAUnixAddress) {
  absl::Status status = RunTask(BindUnix());
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
}

Task<absl::Status> OversizedDatagram() {
  absl::StatusOr<UdpSocket> socket = UdpSocket::Bind(SocketAddress::Ipv4Loopback(0));
  absl::StatusOr<size_t> sent =
      co_await socket->SendTo(std::string(70000, 'x'), SocketAddress::Ipv4Loopback(9));
  co_return sent.status();
}

TEST(UdpTest, ADatagramTooLongIsAnError) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(OversizedDatagram());
  EXPECT_THAT(status.message(), HasSubstr("Message too long")) << status;
}

// A system call of one's own (here a plain recv) driven by the socket's
// readiness: Readable waits for the datagram, Perform retries on EAGAIN.
Task<void> OwnSyscall() {
  absl::StatusOr<SocketAddress> any = SocketAddress::Parse("127.0.0.1:0");
  CONET_CO_ASSERT_OK(any);
  CONET_CO_ASSERT_OK_AND_ASSIGN(UdpSocket receiver, UdpSocket::Bind(*any));
  CONET_CO_ASSERT_OK_AND_ASSIGN(SocketAddress at, receiver.LocalAddress());
  CONET_CO_ASSERT_OK_AND_ASSIGN(UdpSocket sender, UdpSocket::Connect(at));
  char byte = 0;
  EXPECT_EQ(::recv(receiver.fd(), &byte, 1, MSG_DONTWAIT), -1);  // nothing yet
  CONET_CO_ASSERT_OK(co_await sender.Send("a"));
  CONET_CO_ASSERT_OK(co_await receiver.Readable(Within(absl::Seconds(5))));
  EXPECT_EQ(::recv(receiver.fd(), &byte, 1, MSG_DONTWAIT), 1);
  EXPECT_EQ(byte, 'a');
  CONET_CO_ASSERT_OK(co_await sender.Writable(Within(absl::Seconds(5))));
  CONET_CO_ASSERT_OK(co_await sender.Send("b"));
  struct Recv {
    int fd;
    char* out;
    ssize_t operator()() const { return ::recv(fd, out, 1, MSG_DONTWAIT); }
  };
  const Recv recv_one{receiver.fd(), &byte};  // named: see net/task.h on temporaries
  absl::StatusOr<size_t> n = co_await receiver.Perform(Direction::kRead, "recv", recv_one);
  CONET_CO_ASSERT_OK(n);
  EXPECT_EQ(byte, 'b');
}

TEST(UdpTest, ReadinessDrivesASystemCallOfOnesOwn) {
  FdLeakCheck leaks;
  RunTask(OwnSyscall());
}

}  // namespace
}  // namespace conet
