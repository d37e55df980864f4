// conet's TLS client (TlsStream::Connect) against OpenSSL's own server,
// `openssl s_server -rev` (it sends every line back reversed): TLS 1.3 and
// 1.2, verification of the name and of the issuer, a client certificate
// for a server that asks for one, and close_notify.
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/buffered_stream.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/tls.h"
#include "tests/integration/subprocess.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::conet::test::Subprocess;
using ::testing::HasSubstr;

const std::string kDir = "tests/testdata/tls/";

// A port nothing listens on now (s_server needs one given).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// openssl s_server on 127.0.0.1, once it accepts.
struct SServer {
  Subprocess process;
  int port;
};

SServer StartSServer(std::vector<std::string> extra) {
  const int port = FreePort();
  std::vector<std::string> argv = {"/usr/bin/openssl",
                                   "s_server",
                                   "-accept",
                                   absl::StrCat("127.0.0.1:", port),
                                   "-rev",
                                   "-cert",
                                   kDir + "server.pem",
                                   "-key",
                                   kDir + "server.key"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  absl::StatusOr<Subprocess> process = Subprocess::Start(std::move(argv));
  if (!process.ok()) {
    ADD_FAILURE() << process.status();
    std::abort();
  }
  absl::StatusOr<std::string> accepting = process->WaitForLine("ACCEPT");
  if (!accepting.ok()) {
    ADD_FAILURE() << accepting.status();
    std::abort();
  }
  return SServer{*std::move(process), port};
}

TlsClientOptions Trusting(const std::string& ca = "ca.pem") {
  TlsClientOptions options;
  options.ca_file = kDir + ca;
  return options;
}

// What one session with s_server showed.
struct Session {
  absl::Status status;
  std::string version;
  std::string reply;
};

// Connects, checks the certificate against `name`, sends a line, reads the
// reversed line back and closes with close_notify.
Task<Session> TalkTo(int port, TlsClientOptions options, std::string name) {
  Session session;
  absl::StatusOr<TlsContext> context = TlsContext::Client(options);
  absl::StatusOr<StreamSocket> socket =
      co_await StreamSocket::Connect(*SocketAddress::Parse(absl::StrCat("127.0.0.1:", port)));
  if (!context.ok() || !socket.ok()) {
    session.status = context.ok() ? socket.status() : context.status();
    co_return session;
  }
  absl::StatusOr<TlsStream> tls =
      co_await TlsStream::Connect(*std::move(socket), *context, name, Within(absl::Seconds(10)));
  if (!tls.ok()) {
    session.status = tls.status();
    co_return session;
  }
  session.version = std::string(tls->version());
  absl::StatusOr<size_t> sent = co_await tls->WriteAll("hello, s_server\n");
  if (!sent.ok()) {
    session.status = sent.status();
    co_return session;
  }
  BufferedReader<TlsStream> reader(*tls);
  absl::StatusOr<std::string_view> line = co_await reader.ReadLine(1000);
  if (!line.ok()) {
    session.status = line.status();
    co_return session;
  }
  session.reply = std::string(*line);
  session.status = co_await tls->Shutdown();
  co_return session;
}

TEST(TlsInteropTest, Tls13WithOpensslsServer) {
  FdLeakCheck leaks;
  SServer server = StartSServer({"-tls1_3"});
  Session session = RunTask(TalkTo(server.port, Trusting(), "localhost"));
  EXPECT_TRUE(session.status.ok()) << session.status << "; s_server: " << server.process.Stderr();
  EXPECT_EQ(session.version, "TLSv1.3");
  EXPECT_EQ(session.reply, "revres_s ,olleh");
}

TEST(TlsInteropTest, Tls12WithOpensslsServer) {
  FdLeakCheck leaks;
  SServer server = StartSServer({"-tls1_2"});
  Session session = RunTask(TalkTo(server.port, Trusting(), "127.0.0.1"));
  EXPECT_TRUE(session.status.ok()) << session.status;
  EXPECT_EQ(session.version, "TLSv1.2");
  EXPECT_EQ(session.reply, "revres_s ,olleh");
}

TEST(TlsInteropTest, AWrongNameIsRefused) {
  FdLeakCheck leaks;
  SServer server = StartSServer({});
  Session session = RunTask(TalkTo(server.port, Trusting(), "conet.example"));
  EXPECT_TRUE(absl::IsUnauthenticated(session.status)) << session.status;
  EXPECT_THAT(std::string(session.status.message()), HasSubstr("hostname mismatch"));
}

TEST(TlsInteropTest, AnUntrustedIssuerIsRefused) {
  FdLeakCheck leaks;
  SServer server = StartSServer({});
  Session session = RunTask(TalkTo(server.port, Trusting("other_ca.pem"), "localhost"));
  EXPECT_TRUE(absl::IsUnauthenticated(session.status)) << session.status;
  EXPECT_THAT(std::string(session.status.message()), HasSubstr("certificate verify failed"));
}

TEST(TlsInteropTest, AClientCertificateSatisfiesAServerThatAsks) {
  FdLeakCheck leaks;
  SServer server = StartSServer({"-Verify", "1", "-CAfile", kDir + "ca.pem"});
  TlsClientOptions options = Trusting();
  options.certificate_chain_file = kDir + "client.pem";
  options.private_key_file = kDir + "client.key";
  Session session = RunTask(TalkTo(server.port, options, "localhost"));
  EXPECT_TRUE(session.status.ok()) << session.status << "; s_server: " << server.process.Stderr();
  EXPECT_EQ(session.reply, "revres_s ,olleh");
}

TEST(TlsInteropTest, WithoutACertificateAServerThatAsksRefuses) {
  FdLeakCheck leaks;
  SServer server = StartSServer({"-Verify", "1", "-CAfile", kDir + "ca.pem"});
  Session session = RunTask(TalkTo(server.port, Trusting(), "localhost"));
  // TLS 1.3: the client's handshake is over before the server's verdict,
  // which arrives as an alert on the first read.
  EXPECT_TRUE(absl::IsDataLoss(session.status)) << session.status;
  EXPECT_THAT(std::string(session.status.message()), HasSubstr("certificate required"));
}

}  // namespace
}  // namespace conet
