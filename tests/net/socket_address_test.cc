#include "net/socket_address.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace conet {
namespace {

using namespace std::string_literals;  // "a\0b"s keeps the NUL

constexpr socklen_t kSunPathOffset = offsetof(sockaddr_un, sun_path);

// Parses `text`, failing the test (and returning loopback) if it is refused.
SocketAddress MustParse(const std::string& text) {
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(text);
  EXPECT_TRUE(addr.ok()) << addr.status();
  return addr.ok() ? *addr : SocketAddress::Ipv4Loopback(0);
}

// Checks that `result` is InvalidArgument naming the quoted `text` (as the
// error quotes it: non-printable bytes hex-escaped) and containing `reason`.
void ExpectRefused(const absl::StatusOr<SocketAddress>& result, const std::string& text,
                   const std::string& reason) {
  ASSERT_FALSE(result.ok()) << "accepted as " << result->ToString();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(result.status().message());
  EXPECT_NE(message.find(absl::StrCat("invalid address \"", absl::CHexEscape(text), "\"")),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(reason), std::string::npos) << message;
}

// Checks that `result` is InvalidArgument whose message contains `reason`.
void ExpectSockaddrRefused(const absl::StatusOr<SocketAddress>& result, const std::string& reason) {
  ASSERT_FALSE(result.ok()) << "accepted as " << result->ToString();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find(reason), absl::string_view::npos) << result.status();
}

// Returns the sockaddr_un for a UNIX address, to look inside it.
sockaddr_un AsUnix(const SocketAddress& addr) {
  sockaddr_un un{};
  std::memcpy(&un, addr.data(), addr.size());
  return un;
}

absl::StatusOr<SocketAddress> FromUnix(const sockaddr_un& un, socklen_t len) {
  return SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&un), len);
}

struct GoodCase {
  std::string input;
  std::string canonical;  // what ToString() prints
  int family;
  uint16_t port;
};

TEST(SocketAddressTest, ParsesGoodInputsToCanonicalForms) {
  const std::string path107 = "/" + std::string(106, 'p');
  const std::string name107(107, 'n');
  const std::vector<GoodCase> cases = {
      {"127.0.0.1:43125", "127.0.0.1:43125", AF_INET, 43125},
      {"0.0.0.0:0", "0.0.0.0:0", AF_INET, 0},
      {"255.255.255.255:65535", "255.255.255.255:65535", AF_INET, 65535},
      {"10.0.0.1:00080", "10.0.0.1:80", AF_INET, 80},
      {"[::1]:43125", "[::1]:43125", AF_INET6, 43125},
      {"[::]:0", "[::]:0", AF_INET6, 0},
      {"[0:0:0:0:0:0:0:1]:65535", "[::1]:65535", AF_INET6, 65535},
      {"[2001:DB8::A]:443", "[2001:db8::a]:443", AF_INET6, 443},
      {"[::ffff:1.2.3.4]:80", "[::ffff:1.2.3.4]:80", AF_INET6, 80},
      {"[fe80::1%2]:80", "[fe80::1%2]:80", AF_INET6, 80},
      {"[fe80::1%0]:80", "[fe80::1]:80", AF_INET6, 80},
      {"unix:/tmp/x.sock", "unix:/tmp/x.sock", AF_UNIX, 0},
      {"unix:relative/x.sock", "unix:relative/x.sock", AF_UNIX, 0},
      {"unix:" + path107, "unix:" + path107, AF_UNIX, 0},
      {"unix:@name", "unix:@name", AF_UNIX, 0},
      {"unix:@" + name107, "unix:@" + name107, AF_UNIX, 0},
      {"unix:@a\0b\xff:@"s, "unix:@a\0b\xff:@"s, AF_UNIX, 0},
      {"unix:@\0"s, "unix:@\0"s, AF_UNIX, 0},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE(absl::CHexEscape(c.input));
    const SocketAddress addr = MustParse(c.input);
    EXPECT_EQ(addr.ToString(), c.canonical);
    EXPECT_EQ(addr.family(), c.family);
    EXPECT_EQ(addr.data()->sa_family, c.family);
    EXPECT_EQ(addr.port(), c.port);
    const SocketAddress again = MustParse(addr.ToString());
    EXPECT_EQ(again, addr);
    EXPECT_EQ(again.ToString(), c.canonical);
  }
}

struct BadCase {
  std::string input;
  std::string reason;
};

TEST(SocketAddressTest, RefusesBadInputsSayingWhy) {
  const std::vector<BadCase> cases = {
      {"1.2.3.4:99999", "port 99999 out of range 0-65535"},
      {"1.2.3.4:65536", "port 65536 out of range 0-65535"},
      {"1.2.3.4:4294967376", "port 4294967376 out of range 0-65535"},
      {"1.2.3.4:-1", "bad port \"-1\""},
      {"1.2.3.4:+80", "bad port \"+80\""},
      {"1.2.3.4:80 ", "bad port \"80 \""},
      {"1.2.3.4:0x50", "bad port \"0x50\""},
      {"1.2.3.4:", "missing port"},
      {"1.2.3.4", "missing port"},
      {"", "empty address"},
      {":80", "missing host"},
      {"1.2.3:80", "bad IPv4 literal \"1.2.3\""},
      {"256.1.1.1:80", "bad IPv4 literal \"256.1.1.1\""},
      {" 1.2.3.4:80", "bad IPv4 literal \" 1.2.3.4\""},
      {"localhost:80", "bad IPv4 literal \"localhost\""},
      {"1.2.3.4\0:80"s, "bad IPv4 literal \"1.2.3.4\\x00\""},
      {"::1:80", "IPv6 address must be in brackets"},
      {"fe80::1", "IPv6 address must be in brackets"},
      {"[::1]", "missing port"},
      {"[::1]:", "missing port"},
      {"[::1]80", "expected ':' after ']'"},
      {"[::1:80", "missing ']'"},
      {"[::zz]:1", "bad IPv6 literal \"::zz\""},
      {"[1.2.3.4]:80", "bad IPv6 literal \"1.2.3.4\""},
      {"[]:80", "bad IPv6 literal \"\""},
      {"[::1\0]:80"s, "bad IPv6 literal \"::1\\x00\""},
      {"[::1]:99999", "port 99999 out of range 0-65535"},
      {"[::1%]:80", "empty IPv6 scope id"},
      {"[::1%4294967296]:80", "IPv6 scope id 4294967296 out of range"},
      {"[::1%no-such-if0]:80", "unknown network interface \"no-such-if0\""},
      {"[::1%" + std::string(IF_NAMESIZE, 'x') + "]:80", "unknown network interface"},
      {"unix:@", "empty abstract name"},
      {"unix:/" + std::string(107, 'p'), "path is 108 bytes, the limit is 107"},
      {"unix:/" + std::string(119, 'p'), "path is 120 bytes, the limit is 107"},
      {"unix:@" + std::string(108, 'n'), "abstract name is 108 bytes, the limit is 107"},
      {"unix:/tmp/a\0b"s, "path contains a NUL byte"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(absl::CHexEscape(c.input));
    ExpectRefused(SocketAddress::Parse(c.input), c.input, c.reason);
  }
}

TEST(SocketAddressTest, ParsesScopeNamedByInterface) {
  const unsigned lo = ::if_nametoindex("lo");
  if (lo == 0) GTEST_SKIP() << "no loopback interface named lo";
  const SocketAddress addr = MustParse("[::1%lo]:80");
  sockaddr_in6 in6;
  ASSERT_EQ(addr.size(), sizeof(in6));
  std::memcpy(&in6, addr.data(), sizeof(in6));
  EXPECT_EQ(in6.sin6_scope_id, lo);
  EXPECT_EQ(addr.ToString(), absl::StrCat("[::1%", lo, "]:80"));
  EXPECT_EQ(MustParse(addr.ToString()), addr);
}

TEST(SocketAddressTest, FactoriesBuildKernelLayouts) {
  const SocketAddress v4 = SocketAddress::Ipv4(0x0a000102, 8080);
  EXPECT_EQ(v4.ToString(), "10.0.1.2:8080");
  ASSERT_EQ(v4.size(), sizeof(sockaddr_in));
  sockaddr_in in;
  std::memcpy(&in, v4.data(), sizeof(in));
  EXPECT_EQ(in.sin_family, AF_INET);
  EXPECT_EQ(in.sin_port, htons(8080));
  EXPECT_EQ(in.sin_addr.s_addr, htonl(0x0a000102));
  EXPECT_TRUE(v4.is_ipv4());
  EXPECT_FALSE(v4.is_ipv6() || v4.is_unix() || v4.is_abstract());

  EXPECT_EQ(SocketAddress::Ipv4Loopback(7), MustParse("127.0.0.1:7"));
  EXPECT_EQ(SocketAddress::Ipv4(INADDR_ANY, 0).ToString(), "0.0.0.0:0");

  const SocketAddress v6 = SocketAddress::Ipv6Loopback(5);
  EXPECT_EQ(v6, MustParse("[::1]:5"));
  EXPECT_EQ(v6.size(), sizeof(sockaddr_in6));
  EXPECT_TRUE(v6.is_ipv6());
  EXPECT_FALSE(v6.is_ipv4() || v6.is_unix() || v6.is_abstract());

  absl::StatusOr<SocketAddress> path = SocketAddress::UnixPath("/tmp/x");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_TRUE(path->is_unix());
  EXPECT_FALSE(path->is_abstract());
  EXPECT_EQ(path->port(), 0);
  EXPECT_EQ(path->size(), kSunPathOffset + 7);  // path and its NUL
  EXPECT_STREQ(AsUnix(*path).sun_path, "/tmp/x");

  absl::StatusOr<SocketAddress> abstract = SocketAddress::UnixAbstract("x");
  ASSERT_TRUE(abstract.ok()) << abstract.status();
  EXPECT_TRUE(abstract->is_unix());
  EXPECT_TRUE(abstract->is_abstract());
  EXPECT_EQ(abstract->size(), kSunPathOffset + 2);  // leading NUL and name
  EXPECT_EQ(std::string(AsUnix(*abstract).sun_path, 2), "\0x"s);
  EXPECT_EQ(abstract->ToString(), "unix:@x");

  ExpectRefused(SocketAddress::UnixPath(""), "unix:", "empty path");
  ExpectRefused(SocketAddress::UnixAbstract(std::string(108, 'n')),
                "unix:@" + std::string(108, 'n'), "abstract name is 108 bytes, the limit is 107");
}

TEST(SocketAddressTest, WithPortReplacesIpPortsOnly) {
  EXPECT_EQ(SocketAddress::Ipv4Loopback(1).WithPort(65535).ToString(), "127.0.0.1:65535");
  EXPECT_EQ(MustParse("[fe80::1%3]:1").WithPort(2).ToString(), "[fe80::1%3]:2");
  const SocketAddress unix_addr = MustParse("unix:@x");
  EXPECT_EQ(unix_addr.WithPort(80), unix_addr);
  EXPECT_EQ(unix_addr.WithPort(80).port(), 0);
}

TEST(SocketAddressTest, EqualityComparesFamilyAddressPortAndName) {
  EXPECT_EQ(MustParse("1.2.3.4:5"), SocketAddress::Ipv4(0x01020304, 5));
  EXPECT_NE(MustParse("1.2.3.4:5"), MustParse("1.2.3.4:6"));
  EXPECT_NE(MustParse("1.2.3.4:5"), MustParse("1.2.3.5:5"));
  EXPECT_NE(MustParse("[::ffff:1.2.3.4]:5"), MustParse("1.2.3.4:5"));
  EXPECT_NE(MustParse("[fe80::1%1]:5"), MustParse("[fe80::1%2]:5"));
  EXPECT_NE(MustParse("unix:/a"), MustParse("unix:/b"));
  EXPECT_NE(MustParse("unix:/a"), MustParse("unix:/ab"));
  EXPECT_NE(MustParse("unix:a"), MustParse("unix:@a"));
  EXPECT_NE(MustParse("unix:@a"), MustParse("unix:@a\0"s));
  SocketAddress copy = MustParse("unix:@a");
  EXPECT_EQ(copy, MustParse("unix:@a"));
  copy = MustParse("1.2.3.4:5");
  EXPECT_EQ(copy, MustParse("1.2.3.4:5"));
}

TEST(SocketAddressTest, FromSockaddrReadsInetAddresses) {
  sockaddr_in in;
  std::memset(&in, 0xab, sizeof(in));  // sin_zero garbage must not matter
  in.sin_family = AF_INET;
  in.sin_port = htons(8080);
  in.sin_addr.s_addr = htonl(0x0a010203);
  absl::StatusOr<SocketAddress> v4 =
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof(in));
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->ToString(), "10.1.2.3:8080");
  EXPECT_EQ(v4->port(), 8080);
  EXPECT_EQ(*v4, MustParse("10.1.2.3:8080"));

  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(443);
  in6.sin6_flowinfo = htonl(0x12345);  // dropped
  ASSERT_EQ(::inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
  in6.sin6_scope_id = 3;
  absl::StatusOr<SocketAddress> v6 =
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->ToString(), "[fe80::1%3]:443");
  EXPECT_EQ(v6->port(), 443);
  EXPECT_EQ(*v6, MustParse("[fe80::1%3]:443"));

  ExpectSockaddrRefused(SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in), 8),
                        "invalid AF_INET sockaddr: length 8, expected 16");
  ExpectSockaddrRefused(SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&in6),
                                                    sizeof(sockaddr_storage)),
                        "invalid AF_INET6 sockaddr: length 128, expected 28");
}

TEST(SocketAddressTest, FromSockaddrReadsUnixAddresses) {
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  std::strcpy(un.sun_path, "/tmp/x.sock");
  // With and without the terminating NUL counted, as kernels may report it.
  for (socklen_t len :
       {kSunPathOffset + 12, kSunPathOffset + 11, static_cast<socklen_t>(sizeof(un))}) {
    SCOPED_TRACE(len);
    absl::StatusOr<SocketAddress> path = FromUnix(un, len);
    ASSERT_TRUE(path.ok()) << path.status();
    EXPECT_EQ(path->ToString(), "unix:/tmp/x.sock");
    EXPECT_EQ(*path, MustParse("unix:/tmp/x.sock"));
  }

  sockaddr_un abstract{};
  abstract.sun_family = AF_UNIX;
  std::memcpy(abstract.sun_path, "\0ab\0c", 5);
  absl::StatusOr<SocketAddress> named = FromUnix(abstract, kSunPathOffset + 5);
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_TRUE(named->is_abstract());
  EXPECT_EQ(named->ToString(), "unix:@ab\0c"s);
  EXPECT_EQ(*named, MustParse("unix:@ab\0c"s));

  // Unnamed: what getpeername reports for an unbound client.
  for (socklen_t len : {kSunPathOffset, kSunPathOffset + 1}) {
    SCOPED_TRACE(len);
    absl::StatusOr<SocketAddress> unnamed = FromUnix(abstract, len);
    ASSERT_TRUE(unnamed.ok()) << unnamed.status();
    EXPECT_TRUE(unnamed->is_unix());
    EXPECT_FALSE(unnamed->is_abstract());
    EXPECT_EQ(unnamed->size(), sizeof(sa_family_t));
    EXPECT_EQ(unnamed->ToString(), "unix:");
    EXPECT_EQ(unnamed->port(), 0);
  }

  std::memset(un.sun_path, 'p', sizeof(un.sun_path));  // 108 bytes, no NUL
  ExpectRefused(FromUnix(un, sizeof(un)), "unix:" + std::string(108, 'p'),
                "path is 108 bytes, the limit is 107");
  sockaddr_storage big{};
  big.ss_family = AF_UNIX;
  ExpectSockaddrRefused(
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&big), sizeof(un) + 1),
      "invalid AF_UNIX sockaddr: length 111, the most is 110");
}

TEST(SocketAddressTest, FromSockaddrRefusesOtherFamiliesAndShortLengths) {
  sockaddr_storage storage{};
  const auto* addr = reinterpret_cast<const sockaddr*>(&storage);
  storage.ss_family = AF_PACKET;
  ExpectSockaddrRefused(SocketAddress::FromSockaddr(addr, sizeof(storage)),
                        absl::StrCat("unsupported address family ", AF_PACKET));
  storage.ss_family = AF_UNSPEC;
  ExpectSockaddrRefused(SocketAddress::FromSockaddr(addr, sizeof(storage)),
                        "unsupported address family 0");
  storage.ss_family = AF_INET;
  ExpectSockaddrRefused(SocketAddress::FromSockaddr(addr, 1),
                        "length 1 is shorter than its family field");
  ExpectSockaddrRefused(SocketAddress::FromSockaddr(addr, 0),
                        "length 0 is shorter than its family field");
  ExpectSockaddrRefused(SocketAddress::FromSockaddr(nullptr, 16), "null pointer");
}

// The addresses the kernel reports come back as they were bound.
TEST(SocketAddressTest, RoundTripsThroughTheKernel) {
  const std::string name = absl::StrCat("conet-socket-address-test-", getpid());
  for (const SocketAddress& bound :
       {SocketAddress::Ipv4Loopback(0), *SocketAddress::UnixAbstract(name)}) {
    SCOPED_TRACE(bound.ToString());
    const int fd = ::socket(bound.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::bind(fd, bound.data(), bound.size()), 0) << errno;
    sockaddr_storage storage;
    socklen_t len = sizeof(storage);
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len), 0);
    ::close(fd);
    absl::StatusOr<SocketAddress> got =
        SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->WithPort(0), bound);  // the kernel chose the port
    EXPECT_EQ(got->is_ipv4(), got->port() != 0);
    EXPECT_EQ(MustParse(got->ToString()), *got);
  }

  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  sockaddr_storage storage;
  socklen_t len = sizeof(storage);
  ASSERT_EQ(::getpeername(pair[0], reinterpret_cast<sockaddr*>(&storage), &len), 0);
  ::close(pair[0]);
  ::close(pair[1]);
  absl::StatusOr<SocketAddress> unnamed =
      SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&storage), len);
  ASSERT_TRUE(unnamed.ok()) << unnamed.status();
  EXPECT_EQ(unnamed->ToString(), "unix:");
  EXPECT_EQ(MustParse("unix:"), *unnamed);
}

// Parse(ToString()) gives every address back, byte for byte.
TEST(SocketAddressTest, EveryAddressRoundTripsThroughItsText) {
  std::vector<SocketAddress> addresses = {
      SocketAddress::Ipv4Loopback(80),
      SocketAddress::Ipv6Loopback(443),
      *SocketAddress::UnixPath("/tmp/x.sock"),
      *SocketAddress::UnixPath("relative.sock"),
      *SocketAddress::UnixPath("@looks-abstract"),  // a file named "@looks-abstract"
      *SocketAddress::UnixPath("./@dot"),
      *SocketAddress::UnixAbstract("name"),
      *SocketAddress::UnixAbstract("@at"),
      *SocketAddress::UnixAbstract(std::string("nul\0and\nnewline", 16)),
      SocketAddress::UnixUnnamed(),
  };
  for (const SocketAddress& address : addresses) {
    SCOPED_TRACE(address.ToString());
    EXPECT_EQ(MustParse(address.ToString()), address);
  }
  EXPECT_EQ(SocketAddress::UnixPath("@looks-abstract")->ToString(), "unix:./@looks-abstract");
  EXPECT_FALSE(MustParse("unix:./@looks-abstract").is_abstract());
  EXPECT_EQ(SocketAddress::UnixUnnamed().ToString(), "unix:");
  EXPECT_TRUE(SocketAddress::UnixUnnamed().is_unnamed());
  EXPECT_FALSE(SocketAddress::UnixAbstract("x")->is_unnamed());
  EXPECT_FALSE(SocketAddress::Ipv4Loopback(0).is_unnamed());
}

}  // namespace
}  // namespace conet
