// File: net/tls.h
//
// TLS over a StreamSocket, on OpenSSL 3: a TlsContext holds the
// configuration (certificate and key, trust, ALPN, versions) and a TlsStream
// is one connection, with the same ReadSome/WriteSome/WriteAll as a plain
// stream (so BufferedReader and BufferedWriter work over it).
//
//   absl::StatusOr<conet::TlsContext> context = conet::TlsContext::Server(options);
//   absl::StatusOr<conet::StreamSocket> conn = co_await listener.Accept();
//   absl::StatusOr<conet::TlsStream> tls = co_await conet::TlsStream::Accept(
//       std::move(*conn), *context, conet::Within(absl::Seconds(10)));
//   absl::StatusOr<size_t> n = co_await tls->ReadSome(buffer);   // 0: close_notify
//   absl::Status closed = co_await tls->Shutdown();              // sends close_notify
//
// I/O goes straight from OpenSSL to the socket: a BIO of conet's own calls
// recv(2) and send(2, MSG_NOSIGNAL) on the descriptor, so there is no copy
// through a memory BIO and no SIGPIPE. The first attempt of every operation
// is made at once; a coroutine suspends only when OpenSSL wants the socket
// readable or writable. Records are read ahead: one recv(2) usually brings
// several records, and SSL_read serves them from OpenSSL's buffer.
//
// Versions: TLS 1.2 at least (1.0 and 1.1 are refused), 1.3 preferred.
// Renegotiation is refused. Kernel TLS is not used (conet's BIO is not a
// socket BIO, which OpenSSL requires for it).
//
// Errors name the operation and the descriptor and carry OpenSSL's reason:
// "TLS handshake on fd 7: certificate verify failed (Hostname mismatch)".
// A certificate the peer presented that does not verify is
// UnauthenticatedError; other TLS failures (bad records, a protocol
// version refused, a peer that closed without close_notify, which could be
// a truncation) are DataLossError; errors of the socket itself are as for a
// StreamSocket.
#ifndef CONET_NET_TLS_H_
#define CONET_NET_TLS_H_

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/async_fd.h"
#include "net/bytes.h"
#include "net/cancellation.h"
#include "net/stream_socket.h"
#include "net/task.h"

// OpenSSL's types, declared here so that users need not include its headers.
struct ssl_st;
struct ssl_ctx_st;

namespace conet {

enum class TlsVersion { kTls12, kTls13 };

struct TlsServerOptions {
  // PEM files: the certificate chain (the server's certificate first, then
  // intermediates) and its private key.
  std::string certificate_chain_file;
  std::string private_key_file;
  // Non-empty: mutual TLS. Clients must present a certificate that this PEM
  // bundle of CA certificates verifies; a client without one is refused.
  std::string client_ca_file;
  // ALPN protocols in the server's order of preference ("h2", "http/1.1").
  // A client offering none of them gets no ALPN answer (and may go on).
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::kTls12;
  // OpenSSL cipher strings; empty: OpenSSL's defaults. `ciphersuites` is for
  // TLS 1.3 ("TLS_AES_128_GCM_SHA256"), `cipher_list` for TLS 1.2.
  std::string ciphersuites;
  std::string cipher_list;
};

struct TlsClientOptions {
  // A PEM bundle of CA certificates to trust; empty: the system's store.
  std::string ca_file;
  // false: accept any certificate (tests only: it gives up authentication).
  bool verify_peer = true;
  // Optional: a certificate and key to present to a server asking for one.
  std::string certificate_chain_file;
  std::string private_key_file;
  // ALPN protocols to offer, in order of preference.
  std::vector<std::string> alpn;
  TlsVersion min_version = TlsVersion::kTls12;
  std::string ciphersuites;
  std::string cipher_list;
};

// A TLS configuration, shared by every connection made with it. Copies share
// one OpenSSL SSL_CTX; it may be used from several threads at once.
class TlsContext {
 public:
  // Loads the certificate chain and key (and the client CA bundle). Errors
  // name the file and OpenSSL's reason.
  static absl::StatusOr<TlsContext> Server(const TlsServerOptions& options);
  // Loads the trust store (and the client certificate).
  static absl::StatusOr<TlsContext> Client(const TlsClientOptions& options);

  TlsContext() = default;
  [[nodiscard]] bool is_server() const { return state_ != nullptr && state_->server; }
  // OpenSSL's context, for settings this class does not offer.
  [[nodiscard]] ssl_ctx_st* native_handle() const { return state_ ? state_->ctx : nullptr; }

  // The shared part (public only for the ALPN callback in tls.cc).
  struct State {
    ~State();
    ssl_ctx_st* ctx = nullptr;
    bool server = false;
    std::string alpn_wire;  // the protocols, length-prefixed
  };

 private:
  explicit TlsContext(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

namespace internal {

// One connection's OpenSSL state and what conet's BIO needs: heap-held, so
// that a TlsStream may move while awaiters point at it.
struct TlsSession;

// The operations, as AsyncFd syscalls (net/async_fd.h).
struct TlsReadCall {
  static constexpr const char* kWhat = "TLS read";
  TlsSession* session;
  char* data;
  size_t size;
  // Set by a read that left nothing to read, neither in the socket nor in
  // OpenSSL's buffer (the read hint of net/internal/perform.h).
  bool drained = false;
  absl::Status error = absl::OkStatus();  // a TLS failure, with OpenSSL's reason
  ssize_t operator()();
  absl::StatusOr<size_t> Finish(absl::StatusOr<size_t> result);
};
struct TlsWriteCall {
  static constexpr const char* kWhat = "TLS write";
  TlsSession* session;
  const char* data;
  size_t size;
  bool all;
  size_t done = 0;
  absl::Status error = absl::OkStatus();
  ssize_t operator()();
  absl::StatusOr<size_t> Finish(absl::StatusOr<size_t> result);
};

}  // namespace internal

class TlsStream {
 public:
  using ReadAwaiter = AsyncFd::PerformAwaiter<internal::TlsReadCall>;
  using WriteAwaiter = AsyncFd::PerformAwaiter<internal::TlsWriteCall>;

  // Runs the server's side of the handshake on `socket` (accepted on the
  // current loop), with `context` from TlsContext::Server. The Cancellation
  // bounds the handshake: give it a deadline, or a peer that never finishes
  // holds the connection. co_await yields the stream, or why the handshake
  // failed (the socket is closed then).
  static Task<absl::StatusOr<TlsStream>> Accept(StreamSocket socket, TlsContext context,
                                                Cancellation cancel = {});
  // Runs the client's side. `server_name` is sent as SNI (unless it is an
  // IP address) and the server's certificate must match it (a DNS name, or
  // an IP address literal); empty: no SNI and no name check.
  static Task<absl::StatusOr<TlsStream>> Connect(StreamSocket socket, TlsContext context,
                                                 std::string server_name, Cancellation cancel = {});

  TlsStream() = default;
  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  // Reads decrypted bytes, at most `buffer.size()`, waiting until at least
  // one is there. co_await yields the count, 0 when the peer sent
  // close_notify, or the error: a peer that closed the connection without
  // close_notify is DataLossError (the data may have been truncated). At
  // most one pending read; cancelling it loses nothing.
  ReadAwaiter ReadSome(std::span<char> buffer, const Cancellation& cancel = kNoCancellation);
  // Writes as much of `data` as fits in one TLS record (16 KiB) and the
  // socket, waiting until some is written. At most one pending write. After
  // a write fails or is cancelled midway, the stream cannot be written to
  // again (OpenSSL holds a partial record): close it.
  WriteAwaiter WriteSome(ConstBytes data, const Cancellation& cancel = kNoCancellation);
  // Writes all of `data`; co_await yields data.size() or the error.
  WriteAwaiter WriteAll(ConstBytes data, const Cancellation& cancel = kNoCancellation);
  // Sends close_notify (waiting while the socket is full), then shuts the
  // socket's sending side: the peer reads the end of the stream. It does not
  // wait for the peer's close_notify. After a failed read or write it sends
  // nothing (OpenSSL forbids it) and yields OK. No write may be pending.
  Task<absl::Status> Shutdown(Cancellation cancel = {});

  // What the handshake settled: "TLSv1.3", "TLS_AES_128_GCM_SHA256", the
  // ALPN protocol ("" if none).
  [[nodiscard]] std::string_view version() const;
  [[nodiscard]] std::string_view cipher() const;
  [[nodiscard]] std::string_view alpn() const;
  // The peer's certificate: its subject as one line (RFC 2253, "CN=client"),
  // and as PEM. NotFoundError if the peer presented none.
  [[nodiscard]] absl::StatusOr<std::string> PeerSubject() const;
  [[nodiscard]] absl::StatusOr<std::string> PeerCertificatePem() const;

  // The socket underneath (do not read or write it directly).
  [[nodiscard]] StreamSocket& socket() { return socket_; }
  [[nodiscard]] int fd() const { return socket_.fd(); }
  [[nodiscard]] bool is_open() const { return socket_.is_open(); }
  // OpenSSL's connection, for what this class does not offer.
  [[nodiscard]] ssl_st* native_handle() const;
  // Closes the connection without close_notify; pending operations
  // complete with CancelledError.
  void Close() noexcept { socket_.Close(); }

 private:
  TlsStream(StreamSocket socket, std::unique_ptr<internal::TlsSession> session);
  static Task<absl::StatusOr<TlsStream>> Handshake(StreamSocket socket, TlsContext context,
                                                   std::string server_name, Cancellation cancel);

  StreamSocket socket_;
  std::unique_ptr<internal::TlsSession> session_;
};

inline TlsStream::ReadAwaiter TlsStream::ReadSome(std::span<char> buffer,
                                                  const Cancellation& cancel) {
  return socket_.Perform(Direction::kRead,
                         internal::TlsReadCall{session_.get(), buffer.data(), buffer.size()},
                         cancel);
}

inline TlsStream::WriteAwaiter TlsStream::WriteSome(ConstBytes data, const Cancellation& cancel) {
  return socket_.Perform(
      Direction::kWrite,
      internal::TlsWriteCall{session_.get(), data.data(), data.size(), /*all=*/false}, cancel);
}

inline TlsStream::WriteAwaiter TlsStream::WriteAll(ConstBytes data, const Cancellation& cancel) {
  return socket_.Perform(
      Direction::kWrite,
      internal::TlsWriteCall{session_.get(), data.data(), data.size(), /*all=*/true}, cancel);
}

}  // namespace conet

#endif  // CONET_NET_TLS_H_
