#include "net/tls.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstdint>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/buffered_stream.h"
#include "net/timer.h"
#include "net/when_all.h"
#include "tests/util/test_util.h"

namespace conet {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;
using ::testing::HasSubstr;

const std::string kDir = "tests/testdata/tls/";

TlsServerOptions ServerOptions() {
  TlsServerOptions options;
  options.certificate_chain_file = kDir + "server.pem";
  options.private_key_file = kDir + "server.key";
  return options;
}

TlsClientOptions ClientOptions() {
  TlsClientOptions options;
  options.ca_file = kDir + "ca.pem";
  return options;
}

TlsContext MustContext(absl::StatusOr<TlsContext> context) {
  EXPECT_TRUE(context.ok()) << context.status();
  if (!context.ok()) std::abort();
  return *std::move(context);
}

// Both ends of a TCP connection on loopback.
struct Sockets {
  StreamListener listener;
  StreamSocket client;
  StreamSocket server;
};

// Where the tests' connections are made: TCP on loopback unless a test
// says otherwise.
std::string listen_at = "127.0.0.1:0";

Task<absl::StatusOr<Sockets>> Connected() {
  absl::StatusOr<StreamListener> listener = StreamListener::Bind(*SocketAddress::Parse(listen_at));
  if (!listener.ok()) co_return listener.status();
  auto [client, server] =
      co_await WhenAll(StreamSocket::Connect(listener->address()), listener->Accept());
  if (!client.ok()) co_return client.status();
  if (!server.ok()) co_return server.status();
  co_return Sockets{std::move(*listener), std::move(*client), std::move(*server)};
}

// Each side's handshake result.
struct Outcome {
  absl::Status client;
  absl::Status server;
};

// What a test does with both ends of a connection, on the loop they are on.
using Body = Task<void> (*)(TlsStream& client, TlsStream& server);

Task<Outcome> Handshake(TlsContext client_context, TlsContext server_context,
                        std::string server_name, Body body) {
  absl::StatusOr<Sockets> sockets = co_await Connected();
  if (!sockets.ok()) co_return Outcome{sockets.status(), sockets.status()};
  auto [client, server] = co_await WhenAll(
      TlsStream::Connect(std::move(sockets->client), client_context, server_name,
                         Within(absl::Seconds(10))),
      TlsStream::Accept(std::move(sockets->server), server_context, Within(absl::Seconds(10))));
  if (client.ok() && server.ok() && body != nullptr) co_await body(*client, *server);
  co_return Outcome{client.status(), server.status()};
}

Outcome RunTls(TlsContext client, TlsContext server, Body body = nullptr,
               std::string server_name = "localhost") {
  return RunTask(Handshake(std::move(client), std::move(server), std::move(server_name), body));
}

Outcome RunTls(const TlsClientOptions& client, const TlsServerOptions& server, Body body = nullptr,
               std::string server_name = "localhost") {
  return RunTls(MustContext(TlsContext::Client(client)), MustContext(TlsContext::Server(server)),
                body, std::move(server_name));
}

#define EXPECT_BOTH_OK(outcome)                                       \
  do {                                                                \
    const Outcome conet_outcome_ = (outcome);                         \
    EXPECT_TRUE(conet_outcome_.client.ok()) << conet_outcome_.client; \
    EXPECT_TRUE(conet_outcome_.server.ok()) << conet_outcome_.server; \
  } while (false)

// Sends `text` from `from` to `to`; returns what arrived.
Task<std::string> Send(TlsStream& from, TlsStream& to, std::string text) {
  absl::StatusOr<size_t> sent = co_await from.WriteAll(text);
  if (!sent.ok()) co_return sent.status().ToString();
  std::string received;
  char buffer[256];
  while (received.size() < text.size()) {
    absl::StatusOr<size_t> n = co_await to.ReadSome(buffer);
    if (!n.ok()) co_return n.status().ToString();
    if (*n == 0) break;
    received.append(buffer, *n);
  }
  co_return received;
}

Task<void> CheckTls13WithAlpn(TlsStream& client, TlsStream& server) {
  EXPECT_EQ(client.version(), "TLSv1.3");
  EXPECT_EQ(server.version(), "TLSv1.3");
  EXPECT_EQ(server.cipher(), "TLS_AES_128_GCM_SHA256");
  // The server's order of preference decides.
  EXPECT_EQ(client.alpn(), "http/1.1");
  EXPECT_EQ(server.alpn(), "http/1.1");
  EXPECT_THAT(client.PeerSubject().value_or(""), HasSubstr("CN=localhost"));
  EXPECT_TRUE(absl::IsNotFound(server.PeerSubject().status()));
  EXPECT_EQ(co_await Send(client, server, "ping"), "ping");
  EXPECT_EQ(co_await Send(server, client, "pong"), "pong");
}

TEST(TlsTest, ATls13HandshakeCarriesBytesBothWays) {
  FdLeakCheck leaks;
  TlsClientOptions client = ClientOptions();
  client.alpn = {"h2", "http/1.1"};
  TlsServerOptions server = ServerOptions();
  server.alpn = {"http/1.1", "h2"};
  server.ciphersuites = "TLS_AES_128_GCM_SHA256";
  EXPECT_BOTH_OK(RunTls(client, server, CheckTls13WithAlpn));
}

Task<void> CheckTls12(TlsStream& client, TlsStream& server) {
  EXPECT_EQ(server.version(), "TLSv1.2");
  EXPECT_EQ(co_await Send(client, server, "over 1.2"), "over 1.2");
  EXPECT_EQ(co_await Send(server, client, "back"), "back");
}

TEST(TlsTest, Tls12IsSpokenWithAClientLimitedToIt) {
  FdLeakCheck leaks;
  TlsContext client = MustContext(TlsContext::Client(ClientOptions()));
  SSL_CTX_set_max_proto_version(client.native_handle(), TLS1_2_VERSION);
  EXPECT_BOTH_OK(RunTls(client, MustContext(TlsContext::Server(ServerOptions())), CheckTls12));
}

TEST(TlsTest, Tls11IsRefused) {
  FdLeakCheck leaks;
  TlsContext client = MustContext(TlsContext::Client(ClientOptions()));
  SSL_CTX_set_security_level(client.native_handle(), 0);
  SSL_CTX_set_min_proto_version(client.native_handle(), TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(client.native_handle(), TLS1_1_VERSION);
  SSL_CTX_set_cipher_list(client.native_handle(), "DEFAULT:@SECLEVEL=0");
  Outcome tls = RunTls(client, MustContext(TlsContext::Server(ServerOptions())));
  EXPECT_FALSE(tls.client.ok());
  EXPECT_TRUE(absl::IsDataLoss(tls.server)) << tls.server;
  EXPECT_THAT(std::string(tls.server.message()), HasSubstr("TLS handshake on fd"));
  EXPECT_THAT(std::string(tls.server.message()), HasSubstr("unsupported protocol"));
}

Task<void> CheckClientCertificate(TlsStream& client, TlsStream& server) {
  EXPECT_EQ(server.PeerSubject().value_or(""), "CN=conet test client");
  EXPECT_THAT(server.PeerCertificatePem().value_or(""), HasSubstr("-----BEGIN CERTIFICATE-----"));
  EXPECT_EQ(co_await Send(client, server, "mutual"), "mutual");
}

TEST(TlsTest, MutualTlsAcceptsAClientWithACertificateTheCaSigned) {
  FdLeakCheck leaks;
  TlsServerOptions server = ServerOptions();
  server.client_ca_file = kDir + "ca.pem";
  TlsClientOptions client = ClientOptions();
  client.certificate_chain_file = kDir + "client.pem";
  client.private_key_file = kDir + "client.key";
  EXPECT_BOTH_OK(RunTls(client, server, CheckClientCertificate));
}

// The client's handshake ends before the server's verdict (TLS 1.3): the
// server's refusal is what shows.
TEST(TlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  FdLeakCheck leaks;
  TlsServerOptions server = ServerOptions();
  server.client_ca_file = kDir + "ca.pem";
  Outcome tls = RunTls(ClientOptions(), server);
  EXPECT_TRUE(absl::IsUnauthenticated(tls.server)) << tls.server;
  EXPECT_THAT(std::string(tls.server.message()), HasSubstr("did not return a certificate"));
}

TEST(TlsTest, MutualTlsRefusesAClientCertificateFromAnotherCa) {
  FdLeakCheck leaks;
  TlsServerOptions server = ServerOptions();
  server.client_ca_file = kDir + "ca.pem";
  TlsClientOptions client = ClientOptions();
  client.certificate_chain_file = kDir + "other_server.pem";
  client.private_key_file = kDir + "other_server.key";
  Outcome tls = RunTls(client, server);
  EXPECT_TRUE(absl::IsUnauthenticated(tls.server)) << tls.server;
  EXPECT_THAT(std::string(tls.server.message()), HasSubstr("certificate verify failed"));
}

TEST(TlsTest, AClientRefusesAWrongHostName) {
  FdLeakCheck leaks;
  Outcome tls = RunTls(ClientOptions(), ServerOptions(), nullptr, "www.example.com");
  EXPECT_TRUE(absl::IsUnauthenticated(tls.client)) << tls.client;
  EXPECT_THAT(std::string(tls.client.message()), HasSubstr("certificate verify failed"));
  EXPECT_THAT(std::string(tls.client.message()), HasSubstr("hostname mismatch"));
  EXPECT_FALSE(tls.server.ok());  // the client's alert
}

TEST(TlsTest, AClientChecksAnIpAddressAgainstTheCertificate) {
  FdLeakCheck leaks;
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), nullptr, "127.0.0.1"));
  Outcome wrong = RunTls(ClientOptions(), ServerOptions(), nullptr, "127.0.0.2");
  EXPECT_THAT(std::string(wrong.client.message()), HasSubstr("IP address mismatch"));
}

TEST(TlsTest, AClientRefusesACertificateItDoesNotTrust) {
  FdLeakCheck leaks;
  TlsServerOptions server = ServerOptions();
  server.certificate_chain_file = kDir + "other_server.pem";
  server.private_key_file = kDir + "other_server.key";
  Outcome tls = RunTls(ClientOptions(), server);
  EXPECT_TRUE(absl::IsUnauthenticated(tls.client)) << tls.client;
  EXPECT_THAT(std::string(tls.client.message()),
              HasSubstr("unable to get local issuer certificate"));
}

Task<void> CheckNoAlpn(TlsStream& client, TlsStream& server) {
  EXPECT_EQ(client.alpn(), "");
  EXPECT_EQ(server.alpn(), "");
  EXPECT_EQ(co_await Send(client, server, "no alpn"), "no alpn");
}

TEST(TlsTest, NoCommonAlpnProtocolLeavesAlpnEmpty) {
  FdLeakCheck leaks;
  TlsClientOptions client = ClientOptions();
  client.alpn = {"h2"};
  TlsServerOptions server = ServerOptions();
  server.alpn = {"http/1.1"};
  EXPECT_BOTH_OK(RunTls(client, server, CheckNoAlpn));
}

TEST(TlsTest, AnAlpnProtocolThatIsTooLongIsRefused) {
  TlsServerOptions server = ServerOptions();
  server.alpn = {std::string(256, 'x')};
  absl::StatusOr<TlsContext> context = TlsContext::Server(server);
  EXPECT_TRUE(absl::IsInvalidArgument(context.status())) << context.status();
}

TEST(TlsTest, ABadCertificateOrKeyFileIsNamedWithOpenSslsReason) {
  TlsServerOptions missing = ServerOptions();
  missing.certificate_chain_file = kDir + "absent.pem";
  absl::StatusOr<TlsContext> context = TlsContext::Server(missing);
  ASSERT_FALSE(context.ok());
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("absent.pem"));
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("No such file"));

  TlsServerOptions mismatched = ServerOptions();
  mismatched.private_key_file = kDir + "client.key";
  context = TlsContext::Server(mismatched);
  ASSERT_FALSE(context.ok());
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("client.key"));
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("values mismatch"));

  TlsServerOptions not_a_key = ServerOptions();
  not_a_key.private_key_file = kDir + "make_certs.sh";
  context = TlsContext::Server(not_a_key);
  ASSERT_FALSE(context.ok());
  EXPECT_THAT(std::string(context.status().message()), HasSubstr("make_certs.sh"));
}

// A TCP client that connects and then does `act` on its raw socket; the
// server's handshake result.
Task<absl::Status> AcceptFromRawClient(std::string bytes, absl::Duration deadline,
                                       std::stop_token stop) {
  absl::StatusOr<Sockets> sockets = co_await Connected();
  if (!sockets.ok()) co_return sockets.status();
  if (!bytes.empty()) {
    absl::StatusOr<size_t> sent = co_await sockets->client.WriteAll(bytes);
    if (!sent.ok()) co_return sent.status();
  }
  TlsContext context = MustContext(TlsContext::Server(ServerOptions()));
  Cancellation cancel(stop, absl::Now() + deadline);
  absl::StatusOr<TlsStream> tls =
      co_await TlsStream::Accept(std::move(sockets->server), context, cancel);
  co_return tls.status();
}

TEST(TlsTest, AHandshakeThatNeverFinishesEndsAtTheDeadline) {
  FdLeakCheck leaks;
  const absl::Time start = absl::Now();
  absl::Status status =
      RunTask(AcceptFromRawClient("", absl::Milliseconds(200), std::stop_token()));
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("TLS handshake on fd"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
}

TEST(TlsTest, PlaintextIsRefusedWithOpenSslsReason) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(AcceptFromRawClient("GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                                    absl::Seconds(10), std::stop_token()));
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("http request"));
}

TEST(TlsTest, GarbageIsRefused) {
  FdLeakCheck leaks;
  std::string garbage(600, '\x16');
  for (size_t i = 0; i < garbage.size(); i += 7) garbage[i] = static_cast<char>(i);
  absl::Status status = RunTask(AcceptFromRawClient(garbage, absl::Seconds(10), std::stop_token()));
  EXPECT_TRUE(absl::IsDataLoss(status)) << status;
}

// Stops `stop` once the other side of a WhenAll has begun to wait.
Task<void> StopSoon(std::stop_source& stop) {
  (void)co_await Sleep(absl::Milliseconds(20));
  stop.request_stop();
}

Task<absl::Status> CancelAHandshake() {
  std::stop_source stop;
  auto [handshake, stopper] = co_await WhenAll(
      AcceptFromRawClient("", absl::Seconds(10), stop.get_token()), StopSoon(stop));
  co_return handshake;
}

TEST(TlsTest, AHandshakeCanBeCancelled) {
  FdLeakCheck leaks;
  absl::Status status = RunTask(CancelAHandshake());
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
}

Task<absl::StatusOr<size_t>> ReadSomeOf(TlsStream& stream, std::span<char> buffer,
                                        Cancellation cancel) {
  co_return co_await stream.ReadSome(buffer, cancel);
}

Task<absl::StatusOr<size_t>> WriteAllOf(TlsStream& stream, const std::string& data) {
  co_return co_await stream.WriteAll(data);
}

// Cancels a read that waits, then sends: the next read gets every byte.
Task<void> CancelARead(TlsStream& client, TlsStream& server) {
  char buffer[64];
  std::stop_source stop;
  Cancellation cancel(stop.get_token());
  auto [cancelled, stopper] = co_await WhenAll(ReadSomeOf(server, buffer, cancel), StopSoon(stop));
  EXPECT_TRUE(absl::IsCancelled(cancelled.status())) << cancelled.status();
  EXPECT_EQ(co_await Send(client, server, "after the cancel"), "after the cancel");
}

TEST(TlsTest, ACancelledReadLosesNothing) {
  FdLeakCheck leaks;
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), CancelARead));
}

std::string Pattern(size_t size, uint32_t seed) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    seed = seed * 1103515245 + 12345;
    data[i] = static_cast<char>(seed >> 16);
  }
  return data;
}

Task<absl::StatusOr<std::string>> ReadAll(TlsStream& stream, size_t size) {
  std::string received;
  std::vector<char> buffer(70000);
  while (received.size() < size) {
    absl::StatusOr<size_t> n = co_await stream.ReadSome(buffer);
    if (!n.ok()) co_return n.status();
    if (*n == 0) break;
    received.append(buffer.data(), *n);
  }
  co_return received;
}

// Sends 8 MiB each way at once, through small socket buffers.
Task<void> LargeTransfers(TlsStream& client, TlsStream& server) {
  const size_t size = 8 << 20;
  const int small = 16384;
  for (int fd : {client.fd(), server.fd()}) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  }
  const std::string up = Pattern(size, 1);
  const std::string down = Pattern(size, 2);
  auto [sent_up, sent_down, got_up, got_down] =
      co_await WhenAll(WriteAllOf(client, up), WriteAllOf(server, down), ReadAll(server, size),
                       ReadAll(client, size));
  CONET_CO_ASSERT_OK(sent_up);
  CONET_CO_ASSERT_OK(sent_down);
  CONET_CO_ASSERT_OK(got_up);
  CONET_CO_ASSERT_OK(got_down);
  EXPECT_EQ(*sent_up, size);
  EXPECT_TRUE(*got_up == up) << "the server received " << got_up->size() << " bytes, not these";
  EXPECT_TRUE(*got_down == down) << "the client received " << got_down->size()
                                 << " bytes, not these";
}

TEST(TlsTest, LargeTransfersWithPartialWritesBothWaysArriveWhole) {
  FdLeakCheck leaks;
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), LargeTransfers));
}

Task<void> CloseNotify(TlsStream& closing, TlsStream& reading) {
  CONET_CO_ASSERT_OK(co_await closing.WriteAll("last words"));
  CONET_CO_ASSERT_OK(co_await closing.Shutdown());
  absl::StatusOr<std::string> got = co_await ReadAll(reading, 1000);
  CONET_CO_ASSERT_OK(got);
  EXPECT_EQ(*got, "last words");  // then 0: close_notify, not an error
  char byte;
  absl::StatusOr<size_t> again = co_await reading.ReadSome(std::span<char>(&byte, 1));
  CONET_CO_ASSERT_OK(again);
  EXPECT_EQ(*again, 0u);
  // The reader answers with its own close_notify.
  CONET_CO_ASSERT_OK(co_await reading.Shutdown());
  absl::StatusOr<size_t> last = co_await closing.ReadSome(std::span<char>(&byte, 1));
  CONET_CO_ASSERT_OK(last);
  EXPECT_EQ(*last, 0u);
}

Task<void> ClientClosesFirst(TlsStream& client, TlsStream& server) {
  co_await CloseNotify(client, server);
}
Task<void> ServerClosesFirst(TlsStream& client, TlsStream& server) {
  co_await CloseNotify(server, client);
}

TEST(TlsTest, CloseNotifyEndsTheStreamCleanlyBothWays) {
  FdLeakCheck leaks;
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), ClientClosesFirst));
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), ServerClosesFirst));
}

// The server closes its socket without close_notify (the client has sent
// nothing it has not read, so the close is a FIN, not a reset).
Task<void> Truncate(TlsStream& reading, TlsStream& closing) {
  CONET_CO_ASSERT_OK(co_await closing.WriteAll("cut"));
  closing.Close();
  absl::StatusOr<std::string> got = co_await ReadAll(reading, 1000);
  if (got.ok()) {
    ADD_FAILURE() << "a truncated stream read as " << got->size() << " bytes and its end";
    co_return;
  }
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("without close_notify"));
}

TEST(TlsTest, APeerClosingWithoutCloseNotifyIsATruncationError) {
  FdLeakCheck leaks;
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), Truncate));
}

Task<void> ReadLines(TlsStream& client, TlsStream& server) {
  CONET_CO_ASSERT_OK(co_await client.WriteAll("first\r\nsecond\n"));
  BufferedReader<TlsStream> reader(server);
  absl::StatusOr<std::string_view> line = co_await reader.ReadLine(100);
  CONET_CO_ASSERT_OK(line);
  EXPECT_EQ(*line, "first");
  line = co_await reader.ReadLine(100);
  CONET_CO_ASSERT_OK(line);
  EXPECT_EQ(*line, "second");
  BufferedWriter<TlsStream> writer(server);
  writer.Append("one ");
  writer.Append("reply");
  CONET_CO_ASSERT_OK(co_await writer.Flush());
  absl::StatusOr<std::string> got = co_await ReadAll(client, 9);
  CONET_CO_ASSERT_OK(got);
  EXPECT_EQ(*got, "one reply");
}

TEST(TlsTest, BufferedReadersAndWritersWorkOverTls) {
  FdLeakCheck leaks;
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), ReadLines));
}

// Over a UNIX stream (where a short read does not prove the socket empty)
// the same transfers arrive whole.
TEST(TlsTest, TlsOverAUnixStreamCarriesLargeTransfers) {
  FdLeakCheck leaks;
  listen_at = absl::StrCat("unix:@conet-tls-test-", ::getpid());
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), LargeTransfers, ""));
  EXPECT_BOTH_OK(RunTls(ClientOptions(), ServerOptions(), ReadLines, ""));
  listen_at = "127.0.0.1:0";
}

}  // namespace
}  // namespace conet
