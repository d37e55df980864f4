// End-to-end test of examples/udp_echo with a plain blocking UDP client.
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/unique_fd.h"
#include "tests/integration/subprocess.h"

namespace conet {
namespace {

using ::conet::test::RunfilePath;
using ::conet::test::Subprocess;

void EchoesDatagramsOn(const std::string& listen) {
  absl::StatusOr<Subprocess> server =
      Subprocess::Start({RunfilePath("examples/udp_echo"), "--listen=" + listen});
  ASSERT_TRUE(server.ok()) << server.status();
  absl::StatusOr<std::string> bound = server->WaitListening();
  ASSERT_TRUE(bound.ok()) << bound.status();
  absl::StatusOr<SocketAddress> address = SocketAddress::Parse(*bound);
  ASSERT_TRUE(address.ok()) << address.status();
  UniqueFd fd(::socket(address->family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  timeval tv{10, 0};
  ::setsockopt(fd.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ASSERT_EQ(::connect(fd.fd(), address->data(), address->size()), 0);
  for (int i = 0; i < 10; ++i) {
    // Datagram boundaries are kept: sizes 0 to 9000 bytes, each echoed whole.
    const std::string message(static_cast<size_t>(i) * 1000, static_cast<char>('a' + i));
    ASSERT_EQ(::send(fd.fd(), message.data(), message.size(), 0),
              static_cast<ssize_t>(message.size()));
    std::string back(65536, '\0');
    const ssize_t n = ::recv(fd.fd(), back.data(), back.size(), 0);
    ASSERT_GE(n, 0) << "no echo for datagram " << i;
    back.resize(static_cast<size_t>(n));
    EXPECT_EQ(back, message) << "datagram " << i;
  }
  absl::StatusOr<int> status = server->Stop(SIGTERM);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 0) << server->Stderr();
}

TEST(UdpEchoTest, EchoesOverIpv4) { EchoesDatagramsOn("127.0.0.1:0"); }

TEST(UdpEchoTest, EchoesOverIpv6) { EchoesDatagramsOn("[::1]:0"); }

}  // namespace
}  // namespace conet
