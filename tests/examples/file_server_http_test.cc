// file_server's worker connection (ServeHttp) with the monitor's answers
// (Answer) standing in for the channel between them: every status of the
// contract, HEAD, ranges, pipelining in order, HTTP/1.0, keep-alive and
// close, limits and the request timeout, checked from a raw client.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "examples/file_server/http_session.h"
#include "examples/file_server/monitor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/socket_address.h"
#include "net/tls.h"
#include "net/when_all.h"
#include "tests/examples/response_field.h"
#include "tests/util/scratch_dir.h"
#include "tests/util/test_util.h"

namespace conet::file_server {
namespace {

using ::conet::test::FdLeakCheck;
using ::conet::test::RunTask;

// The monitor's answers, without the channel.
class MonitorFiles : public FileSource {
 public:
  explicit MonitorFiles(int root_fd) : root_fd_(root_fd) {}
  Task<absl::StatusOr<OpenedFile>> Open(std::string path) override {
    MonitorReply reply = Answer("OPEN " + path, root_fd_);
    if (reply.text.starts_with("OK /")) {
      co_return OpenedFile{std::move(reply.file), reply.text.substr(3)};
    }
    if (reply.text == "ERR 400") co_return absl::InvalidArgumentError(reply.text);
    co_return absl::NotFoundError(reply.text);
  }

 private:
  int root_fd_;
};

// One response as a client reads it.
struct Response {
  int status = 0;
  std::string head;
  std::string body;
  std::string Field(const std::string& name) const { return http::FieldOf(head, name); }
};

// Splits what a connection received into responses; `head_only[i]` says the
// i-th answered a HEAD (no body despite its Content-Length).
std::vector<Response> Responses(std::string bytes, const std::vector<bool>& head_only = {}) {
  std::vector<Response> responses;
  while (!bytes.empty()) {
    Response r;
    const size_t end = bytes.find("\r\n\r\n");
    if (end == std::string::npos || !absl::SimpleAtoi(bytes.substr(9, 3), &r.status)) break;
    r.head = bytes.substr(0, end + 2);
    size_t length = 0;
    const bool head = responses.size() < head_only.size() && head_only[responses.size()];
    if (!head && !absl::SimpleAtoi(r.Field("Content-Length"), &length)) length = 0;
    r.body = bytes.substr(end + 4, length);
    bytes.erase(0, end + 4 + length);
    responses.push_back(std::move(r));
  }
  return responses;
}

class FileServerHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.MakeDirectory("root");
    dir_.MakeDirectory("root/docs");
    dir_.WriteFile("root/index.html", "<h1>home</h1>");
    dir_.WriteFile("root/docs/index.html", "docs index");
    dir_.WriteFile("root/hello.txt", "hello, world\n");
    dir_.WriteFile("root/empty", "");
    dir_.WriteFile("root/a b.css", "body{}");
    dir_.WriteFile("secret", "secret");
    dir_.MakeSymlink("root/escape", "../secret");
    for (size_t i = 0; i < 40000; ++i) big_.push_back(static_cast<char>('a' + i % 23));
    dir_.WriteFile("root/big.bin", big_);
    root_ = dir_.OpenDirectory("root");
    root_fd_ = root_.fd();
  }
  // Sends `requests` at once and returns all the server sent until it
  // closed the connection.
  std::string Exchange(const std::string& requests, absl::Duration timeout = absl::Seconds(5)) {
    return RunTask(Run(requests, root_fd_, timeout));
  }

  static Task<std::string> Client(StreamSocket& client, std::string requests) {
    absl::StatusOr<size_t> sent = co_await client.WriteAll(requests);
    EXPECT_TRUE(sent.ok()) << sent.status();
    std::string received;
    char buffer[65536];
    const Cancellation deadline = Within(absl::Seconds(10));
    while (true) {
      absl::StatusOr<size_t> n = co_await client.ReadSome(buffer, deadline);
      if (!n.ok() || *n == 0) break;
      received.append(buffer, *n);
    }
    co_return received;
  }
  static Task<void> Server(StreamSocket& server, int root_fd, absl::Duration timeout) {
    MonitorFiles files(root_fd);
    SessionOptions options;
    options.request_timeout = timeout;
    co_await ServeHttp(server, files, options);
    server.Close();
  }
  static Task<std::string> Run(std::string requests, int root_fd, absl::Duration timeout) {
    absl::StatusOr<StreamListener> listener =
        StreamListener::Bind(*SocketAddress::Parse("127.0.0.1:0"));
    if (!listener.ok()) co_return listener.status().ToString();
    auto [client, server] =
        co_await WhenAll(StreamSocket::Connect(listener->address()), listener->Accept());
    if (!client.ok() || !server.ok()) co_return std::string("connect failed");
    auto [received, served] =
        co_await WhenAll(Client(*client, std::move(requests)), Server(*server, root_fd, timeout));
    co_return received;
  }

  // The same over TLS (the test certificates), the client checking the name.
  std::string ExchangeTls(const std::string& requests) {
    return RunTask(RunTls(requests, root_fd_));
  }
  static Task<std::string> TlsClient(TlsStream& client, std::string requests) {
    absl::StatusOr<size_t> sent = co_await client.WriteAll(requests);
    EXPECT_TRUE(sent.ok()) << sent.status();
    std::string received;
    char buffer[65536];
    while (true) {
      absl::StatusOr<size_t> n = co_await client.ReadSome(buffer, Within(absl::Seconds(10)));
      if (!n.ok()) ADD_FAILURE() << n.status();  // the server ends with close_notify
      if (!n.ok() || *n == 0) break;
      received.append(buffer, *n);
    }
    co_return received;
  }
  static Task<void> TlsServer(TlsStream& server, int root_fd) {
    MonitorFiles files(root_fd);
    co_await ServeHttp(server, files, SessionOptions());
  }
  static Task<std::string> RunTls(std::string requests, int root_fd) {
    const std::string certs = "tests/testdata/tls/";
    TlsServerOptions server_options;
    server_options.certificate_chain_file = certs + "server.pem";
    server_options.private_key_file = certs + "server.key";
    TlsClientOptions client_options;
    client_options.ca_file = certs + "ca.pem";
    absl::StatusOr<TlsContext> server_context = TlsContext::Server(server_options);
    absl::StatusOr<TlsContext> client_context = TlsContext::Client(client_options);
    absl::StatusOr<StreamListener> listener =
        StreamListener::Bind(*SocketAddress::Parse("127.0.0.1:0"));
    if (!server_context.ok() || !client_context.ok() || !listener.ok()) co_return "no setup";
    auto [client, server] =
        co_await WhenAll(StreamSocket::Connect(listener->address()), listener->Accept());
    if (!client.ok() || !server.ok()) co_return std::string("connect failed");
    auto [tls_client, tls_server] =
        co_await WhenAll(TlsStream::Connect(*std::move(client), *client_context, "localhost"),
                         TlsStream::Accept(*std::move(server), *server_context));
    if (!tls_client.ok() || !tls_server.ok()) co_return std::string("handshake failed");
    auto [received, served] = co_await WhenAll(TlsClient(*tls_client, std::move(requests)),
                                               TlsServer(*tls_server, root_fd));
    co_return received;
  }

  test::ScratchDir dir_;
  UniqueFd root_;
  int root_fd_ = -1;
  std::string big_;
};

constexpr char kClose[] = "Connection: close\r\n";

std::string Get(const std::string& target, const std::string& fields = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: test\r\n" + fields + "\r\n";
}

TEST_F(FileServerHttpTest, AFileWithItsHeadFields) {
  FdLeakCheck leaks;
  std::vector<Response> r = Responses(Exchange(Get("/hello.txt", kClose)));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].status, 200);
  EXPECT_EQ(r[0].body, "hello, world\n");
  EXPECT_EQ(r[0].Field("Content-Length"), "13");
  EXPECT_EQ(r[0].Field("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r[0].Field("Connection"), "close");
  EXPECT_THAT(r[0].Field("Last-Modified"), ::testing::EndsWith(" GMT"));
  EXPECT_THAT(r[0].Field("Date"), ::testing::EndsWith(" GMT"));
}

TEST_F(FileServerHttpTest, PipelinedRequestsAreAnsweredInOrderOnOneConnection) {
  FdLeakCheck leaks;
  const std::string requests = Get("/hello.txt") + Get("/") + Get("/docs/") + Get("/docs") +
                               Get("/a%20b.css") + Get("/empty") + Get("/absent") +
                               "HEAD /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n" + Get("/", kClose);
  std::vector<Response> r = Responses(Exchange(requests), {0, 0, 0, 0, 0, 0, 0, 1, 0});
  ASSERT_EQ(r.size(), 9u);
  EXPECT_EQ(r[0].body, "hello, world\n");
  EXPECT_EQ(r[1].body, "<h1>home</h1>");
  EXPECT_EQ(r[1].Field("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(r[2].body, "docs index");
  EXPECT_EQ(r[3].body, "docs index");
  EXPECT_EQ(r[4].body, "body{}");
  EXPECT_EQ(r[4].Field("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(r[5].status, 200);
  EXPECT_EQ(r[5].Field("Content-Length"), "0");
  EXPECT_EQ(r[6].status, 404);  // and the connection goes on
  EXPECT_EQ(r[7].status, 200);
  EXPECT_EQ(r[7].Field("Content-Length"), "13");
  EXPECT_EQ(r[7].body, "");
  EXPECT_EQ(r[8].status, 200);
}

TEST_F(FileServerHttpTest, OneByteRangeIs206AndOutsideTheFile416) {
  FdLeakCheck leaks;
  std::vector<Response> r = Responses(Exchange(
      Get("/hello.txt", "Range: bytes=7-11\r\n") + Get("/hello.txt", "Range: bytes=-6\r\n") +
      Get("/hello.txt", "Range: bytes=100-\r\n") +
      Get("/hello.txt", "Range: bytes=0-1,3-4\r\n" + std::string(kClose))));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].status, 206);
  EXPECT_EQ(r[0].body, "world");
  EXPECT_EQ(r[0].Field("Content-Range"), "bytes 7-11/13");
  EXPECT_EQ(r[1].body, "world\n");
  EXPECT_EQ(r[2].status, 416);
  EXPECT_EQ(r[2].Field("Content-Range"), "bytes */13");
  EXPECT_EQ(r[3].status, 200);  // several ranges: ignored, the whole file
  EXPECT_EQ(r[3].body, "hello, world\n");
}

TEST_F(FileServerHttpTest, ErrorsOfTheContract) {
  FdLeakCheck leaks;
  auto status_of = [this](const std::string& request) {
    std::vector<Response> r = Responses(Exchange(request));
    return r.empty() ? 0 : r[0].status;
  };
  EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
  EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: t\r\n\r\n"), 505);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), 400);
  EXPECT_EQ(status_of(Get("/../secret")), 400);
  EXPECT_EQ(status_of(Get("/%2e%2e/secret")), 400);
  EXPECT_EQ(status_of(Get("/escape", kClose)), 404);
  EXPECT_EQ(status_of(Get("/a%00b")), 400);
  EXPECT_EQ(status_of("GET /" + std::string(9000, 'x') + " HTTP/1.1\r\n"), 414);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: t\r\nX: " + std::string(9000, 'y')), 431);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"), 400);
  std::vector<Response> allow = Responses(Exchange("DELETE / HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(allow.size(), 1u);
  EXPECT_EQ(allow[0].Field("Allow"), "GET, HEAD");
}

TEST_F(FileServerHttpTest, Http10ClosesUnlessItAsksForKeepAlive) {
  FdLeakCheck leaks;
  std::vector<Response> once =
      Responses(Exchange("GET /hello.txt HTTP/1.0\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(once.size(), 1u);  // closed after the first
  EXPECT_THAT(once[0].head, ::testing::StartsWith("HTTP/1.0 200 OK"));
  std::vector<Response> kept = Responses(Exchange(
      "GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello.txt HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0].Field("Connection"), "keep-alive");
}

TEST_F(FileServerHttpTest, ASlowRequestIs408AndAnIdleConnectionIsClosedSilently) {
  FdLeakCheck leaks;
  std::vector<Response> slow =
      Responses(Exchange("GET /hello.txt HTTP/1.1\r\nHost:", absl::Milliseconds(200)));
  ASSERT_EQ(slow.size(), 1u);
  EXPECT_EQ(slow[0].status, 408);
  EXPECT_EQ(Exchange(Get("/empty"), absl::Milliseconds(200)).find("408"), std::string::npos);
}

}  // namespace
}  // namespace conet::file_server

namespace conet::file_server {
namespace {

TEST_F(FileServerHttpTest, OverTlsBodiesAreReadIntoRecordsAndTheSessionEndsWithCloseNotify) {
  FdLeakCheck leaks;
  std::vector<Response> r = Responses(
      ExchangeTls(Get("/big.bin") + Get("/hello.txt", "Range: bytes=0-4\r\n") + Get("/absent") +
                  "HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n" + Get("/", kClose)),
      {0, 0, 0, 1, 0});
  ASSERT_EQ(r.size(), 5u);
  EXPECT_EQ(r[0].status, 200);
  EXPECT_TRUE(r[0].body == big_) << "the body differs (" << r[0].body.size() << " bytes)";
  EXPECT_EQ(r[1].status, 206);
  EXPECT_EQ(r[1].body, "hello");
  EXPECT_EQ(r[2].status, 404);
  EXPECT_EQ(r[3].Field("Content-Length"), "40000");
  EXPECT_EQ(r[4].body, "<h1>home</h1>");
}

}  // namespace
}  // namespace conet::file_server
