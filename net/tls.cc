#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace conet {

namespace internal {

struct TlsSession {
  ~TlsSession() { SSL_free(ssl); }  // frees the BIO too

  SSL* ssl = nullptr;
  int fd = -1;
  // Set while SSL_read runs: a record OpenSSL writes then (an alert) that
  // the socket cannot take now is kept in `unsent` rather than making the
  // read wait for writability; the next write or read sends it first.
  bool in_read = false;
  // A fatal error happened: OpenSSL forbids SSL_shutdown afterwards.
  bool failed = false;
  int saved_errno = 0;  // the socket's errno behind an SSL_ERROR_SYSCALL
  std::string unsent;
  // A TCP socket: a recv that returns less than asked has emptied it (on a
  // UNIX stream a message carrying descriptors or credentials cuts it).
  bool short_read_drains = false;
  // The last recv returned less than asked (or nothing for now).
  bool last_recv_short = false;
  // Set during the handshake: records are gathered in `unsent` and sent
  // when OpenSSL flushes its flight, one send(2) for a flight of several
  // records (ServerHello to Finished; the session tickets).
  bool gather_flight = false;
  // A send failed for good (EPIPE, ECONNRESET): later ones are not tried.
  int send_errno = 0;
};

}  // namespace internal

namespace {

using internal::TlsSession;

// A record written during a read is small (an alert), and a handshake
// flight holds a certificate chain; this bounds them.
constexpr size_t kMaxUnsent = 256 * 1024;

// --- The BIO: recv/send on the descriptor -----------------------------------

TlsSession* SessionOf(BIO* bio) { return static_cast<TlsSession*>(BIO_get_data(bio)); }

ssize_t SendSome(int fd, const char* data, size_t size) {
  ssize_t sent;
  do {
    sent = ::send(fd, data, size, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  return sent;
}

// Sends what a read left unsent; true once nothing is left.
bool FlushUnsent(TlsSession& session) {
  while (!session.unsent.empty()) {
    const ssize_t sent = SendSome(session.fd, session.unsent.data(), session.unsent.size());
    if (sent < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) session.send_errno = errno;
      return false;
    }
    session.unsent.erase(0, static_cast<size_t>(sent));
  }
  return true;
}

bool KeepUnsent(TlsSession& session, const char* data, size_t size) {
  if (session.unsent.size() + size > kMaxUnsent) {
    session.saved_errno = ENOBUFS;
    return false;
  }
  session.unsent.append(data, size);
  return true;
}

int BioWrite(BIO* bio, const char* data, size_t size, size_t* written) {
  TlsSession& session = *SessionOf(bio);
  BIO_clear_retry_flags(bio);
  if (session.send_errno != 0) {  // the peer is gone: no send would reach it
    session.saved_errno = session.send_errno;
    return 0;
  }
  if (session.gather_flight) {
    if (!KeepUnsent(session, data, size)) return 0;
    *written = size;
    return 1;
  }
  // What a read kept goes first; behind it, nothing can be sent now.
  ssize_t sent = -1;
  if (FlushUnsent(session)) {
    sent = SendSome(session.fd, data, size);
    if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) session.send_errno = errno;
  }
  if (session.send_errno != 0) {
    session.saved_errno = session.send_errno;
    return 0;
  }
  const size_t done = sent < 0 ? 0 : static_cast<size_t>(sent);
  if (session.in_read && done < size) {
    if (!KeepUnsent(session, data + done, size - done)) return 0;
    *written = size;
    return 1;
  }
  if (sent < 0) {
    BIO_set_retry_write(bio);
    return 0;
  }
  *written = done;
  return 1;
}

int BioRead(BIO* bio, char* data, size_t size, size_t* read) {
  TlsSession& session = *SessionOf(bio);
  BIO_clear_retry_flags(bio);
  if (!session.unsent.empty()) FlushUnsent(session);
  ssize_t got;
  do {
    got = ::recv(session.fd, data, size, 0);
  } while (got < 0 && errno == EINTR);
  session.last_recv_short = got < static_cast<ssize_t>(size);
  if (got > 0) {
    *read = static_cast<size_t>(got);
    return 1;
  }
  if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    BIO_set_retry_read(bio);
  } else if (got < 0) {
    session.saved_errno = errno;
  }
  return 0;  // 0 bytes without a retry flag: the end of the stream
}

// Flushing sends what was gathered or kept; a full socket is a retry.
long BioCtrl(BIO* bio, int command, long, void*) {  // NOLINT(runtime/int): OpenSSL's type
  if (command != BIO_CTRL_FLUSH) return 0;
  TlsSession& session = *SessionOf(bio);
  BIO_clear_retry_flags(bio);
  if (FlushUnsent(session)) return 1;
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    BIO_set_retry_write(bio);
  } else {
    session.saved_errno = errno;
  }
  return 0;
}

int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* SocketMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "conet socket");
    BIO_meth_set_write_ex(m, BioWrite);
    BIO_meth_set_read_ex(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, BioCreate);
    return m;
  }();
  return method;
}

// --- Errors --------------------------------------------------------------------

// OpenSSL's queued reasons, oldest first, joined; the queue is emptied.
// `authentication` is set when one of them is a certificate's refusal.
std::string QueuedReasons(bool* authentication = nullptr) {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {  // NOLINT(runtime/int)
    const int reason_code = ERR_GET_REASON(code);
    if (authentication != nullptr && ERR_GET_LIB(code) == ERR_LIB_SSL &&
        (reason_code == SSL_R_CERTIFICATE_VERIFY_FAILED ||
         reason_code == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)) {
      *authentication = true;
    }
    char buffer[256];
    const char* reason = nullptr;
    if (ERR_SYSTEM_ERROR(code)) {
      reason = std::strerror(reason_code);  // a file that would not open
    } else if (ERR_GET_REASON(code) == ERR_R_SYS_LIB) {
      continue;  // "system lib": the errno's entry says which
    } else {
      reason = ERR_reason_error_string(code);
    }
    if (reason == nullptr) {
      ERR_error_string_n(code, buffer, sizeof(buffer));
      reason = buffer;
    }
    if (text.find(reason) != std::string::npos) continue;
    if (!text.empty()) absl::StrAppend(&text, "; ");
    absl::StrAppend(&text, reason);
  }
  return text;
}

// The status for an OpenSSL call on a connection that failed with `error`
// (SSL_get_error), for errors other than WANT_READ/WANT_WRITE.
absl::Status SessionError(TlsSession& session, int error, const char* what) {
  session.failed = true;
  const std::string context = absl::StrCat(what, " on fd ", session.fd);
  bool authentication = false;
  std::string reasons = QueuedReasons(&authentication);
  // The socket's own error (a reset, EPIPE), unless OpenSSL had a reason
  // of its own first: an alert it could not send after it is not the cause.
  if (reasons.empty() && session.saved_errno != 0) {
    return absl::ErrnoToStatus(session.saved_errno, context);
  }
  if (reasons.empty() && error == SSL_ERROR_SYSCALL) {  // the socket's end, nothing else
    return absl::DataLossError(
        absl::StrCat(context, ": the peer closed the connection without close_notify"));
  }
  if (reasons.empty()) reasons = absl::StrCat("OpenSSL error ", error);
  if (authentication) {
    const long verify = SSL_get_verify_result(session.ssl);  // NOLINT(runtime/int)
    if (verify != X509_V_OK) {
      absl::StrAppend(&reasons, " (", X509_verify_cert_error_string(verify), ")");
    }
    return absl::UnauthenticatedError(absl::StrCat(context, ": ", reasons));
  }
  if (reasons.find("unexpected eof") != std::string::npos) {
    absl::StrAppend(&reasons, ": the peer closed the connection without close_notify");
  }
  return absl::DataLossError(absl::StrCat(context, ": ", reasons));
}

// A context-level failure: `what` and OpenSSL's reasons.
absl::Status ContextError(const std::string& what) {
  std::string reasons = QueuedReasons();
  if (reasons.empty()) reasons = "unknown OpenSSL error";
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", reasons));
}

// --- Contexts --------------------------------------------------------------------

int VersionOf(TlsVersion version) {
  return version == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

absl::StatusOr<std::string> AlpnWire(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& protocol : protocols) {
    if (protocol.empty() || protocol.size() > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("ALPN protocol \"", protocol, "\": must be 1 to 255 bytes"));
    }
    wire.push_back(static_cast<char>(protocol.size()));
    wire.append(protocol);
  }
  return wire;
}

int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_length,
               const unsigned char* offered, unsigned int offered_length, void* arg) {
  const auto* state = static_cast<const TlsContext::State*>(arg);
  unsigned char* chosen = nullptr;
  const auto* ours = reinterpret_cast<const unsigned char*>(state->alpn_wire.data());
  if (SSL_select_next_proto(&chosen, out_length, ours,
                            static_cast<unsigned int>(state->alpn_wire.size()), offered,
                            offered_length) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// Settings both sides share.
absl::Status Configure(SSL_CTX* ctx, TlsVersion min_version, const std::string& ciphersuites,
                       const std::string& cipher_list) {
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  if (SSL_CTX_set_min_proto_version(ctx, VersionOf(min_version)) != 1) {
    return ContextError("TLS minimum version");
  }
  if (!ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, ciphersuites.c_str()) != 1) {
    return ContextError(absl::StrCat("TLS 1.3 ciphersuites \"", ciphersuites, "\""));
  }
  if (!cipher_list.empty() && SSL_CTX_set_cipher_list(ctx, cipher_list.c_str()) != 1) {
    return ContextError(absl::StrCat("TLS cipher list \"", cipher_list, "\""));
  }
  return absl::OkStatus();
}

absl::Status LoadIdentity(SSL_CTX* ctx, const std::string& chain, const std::string& key) {
  if (SSL_CTX_use_certificate_chain_file(ctx, chain.c_str()) != 1) {
    return ContextError(absl::StrCat("TLS certificate chain ", chain));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return ContextError(absl::StrCat("TLS private key ", key));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return ContextError(absl::StrCat("TLS private key ", key, " against certificate ", chain));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TlsContext::State>> NewState(bool server) {
  ERR_clear_error();
  auto state = std::make_shared<TlsContext::State>();
  state->server = server;
  state->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (state->ctx == nullptr) return ContextError("SSL_CTX_new");
  return state;
}

}  // namespace

TlsContext::State::~State() { SSL_CTX_free(ctx); }

absl::StatusOr<TlsContext> TlsContext::Server(const TlsServerOptions& options) {
  absl::StatusOr<std::shared_ptr<State>> state = NewState(/*server=*/true);
  if (!state.ok()) return state.status();
  SSL_CTX* ctx = (*state)->ctx;
  absl::Status status =
      Configure(ctx, options.min_version, options.ciphersuites, options.cipher_list);
  if (status.ok()) {
    status = LoadIdentity(ctx, options.certificate_chain_file, options.private_key_file);
  }
  if (!status.ok()) return status;
  // Resumption is by session ticket alone (stateless, as nginx's default):
  // a server-side cache costs a lock and a periodic sweep of its table on
  // every new session. Tickets of verified clients need a context id.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  static constexpr unsigned char kSessionContext[] = "conet";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  if (!options.client_ca_file.empty()) {
    const char* ca = options.client_ca_file.c_str();
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca);
    if (names == nullptr || SSL_CTX_load_verify_locations(ctx, ca, nullptr) != 1) {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
      return ContextError(absl::StrCat("TLS client CA ", options.client_ca_file));
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  absl::StatusOr<std::string> wire = AlpnWire(options.alpn);
  if (!wire.ok()) return wire.status();
  (*state)->alpn_wire = std::move(*wire);
  if (!(*state)->alpn_wire.empty()) SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, state->get());
  return TlsContext(std::move(*state));
}

absl::StatusOr<TlsContext> TlsContext::Client(const TlsClientOptions& options) {
  absl::StatusOr<std::shared_ptr<State>> state = NewState(/*server=*/false);
  if (!state.ok()) return state.status();
  SSL_CTX* ctx = (*state)->ctx;
  absl::Status status =
      Configure(ctx, options.min_version, options.ciphersuites, options.cipher_list);
  if (!status.ok()) return status;
  if (!options.certificate_chain_file.empty() || !options.private_key_file.empty()) {
    status = LoadIdentity(ctx, options.certificate_chain_file, options.private_key_file);
    if (!status.ok()) return status;
  }
  if (options.verify_peer) {
    const bool loaded = options.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                                : SSL_CTX_load_verify_locations(
                                                      ctx, options.ca_file.c_str(), nullptr) == 1;
    if (!loaded) {
      return ContextError(options.ca_file.empty() ? std::string("TLS system trust store")
                                                  : absl::StrCat("TLS CA file ", options.ca_file));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  absl::StatusOr<std::string> wire = AlpnWire(options.alpn);
  if (!wire.ok()) return wire.status();
  (*state)->alpn_wire = std::move(*wire);
  const std::string& alpn = (*state)->alpn_wire;
  if (!alpn.empty() &&
      SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(alpn.data()),
                              static_cast<unsigned int>(alpn.size())) != 0) {
    return ContextError("TLS ALPN protocols");
  }
  return TlsContext(std::move(*state));
}

// --- The operations --------------------------------------------------------------

namespace internal {

namespace {

// After an operation returned `result` <= 0: -1 with errno EAGAIN to wait
// for readiness, or -1 with `*error` set (or 0 for close_notify on a read).
ssize_t Failed(TlsSession& session, int result, bool reading, absl::Status* error,
               const char* what) {
  const int code = SSL_get_error(session.ssl, result);
  if (code == SSL_ERROR_ZERO_RETURN && reading) return 0;
  if ((code == SSL_ERROR_WANT_READ && reading) || (code == SSL_ERROR_WANT_WRITE && !reading)) {
    errno = EAGAIN;
    return -1;
  }
  if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE) {
    // A write that wants a read (renegotiation, refused) or a read whose
    // record could not even be kept: nothing to wait for in this direction.
    *error = absl::DataLossError(absl::StrCat(what, " on fd ", session.fd, ": OpenSSL wants to ",
                                              reading ? "write" : "read", " during a ",
                                              reading ? "read" : "write"));
    session.failed = true;
    ERR_clear_error();
  } else {
    *error = SessionError(session, code, what);
  }
  errno = EPROTO;
  return -1;
}

absl::StatusOr<size_t> FinishWith(absl::Status& error, absl::StatusOr<size_t> result) {
  if (!error.ok()) return std::move(error);
  return result;
}

}  // namespace

// SSL_get_error needs the thread's error queue empty before an operation.
// conet leaves it empty after its own; peeking is cheaper than clearing
// all sixteen slots before every read and write.
void ClearStaleErrors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

ssize_t TlsReadCall::operator()() {
  if (size == 0) return 0;
  TlsSession& s = *session;
  ClearStaleErrors();
  s.in_read = true;
  size_t count = 0;
  s.last_recv_short = false;
  const int result = SSL_read_ex(s.ssl, data, size, &count);
  s.in_read = false;
  if (result == 1) {
    // Nothing left in the kernel nor in OpenSSL's buffer: the next read
    // waits for the socket's next edge instead of a recv failing with
    // EAGAIN (net/internal/perform.h, ReportsDrained).
    drained = s.short_read_drains && s.last_recv_short && SSL_has_pending(s.ssl) == 0;
    return static_cast<ssize_t>(count);
  }
  return Failed(s, result, /*reading=*/true, &error, kWhat);
}

absl::StatusOr<size_t> TlsReadCall::Finish(absl::StatusOr<size_t> result) {
  return FinishWith(error, std::move(result));
}

ssize_t TlsWriteCall::operator()() {
  TlsSession& s = *session;
  while (true) {
    ClearStaleErrors();
    size_t count = 0;
    const int result = SSL_write_ex(s.ssl, data + done, size - done, &count);
    if (result != 1) return Failed(s, result, /*reading=*/false, &error, kWhat);
    done += count;
    if (!all || done == size) return static_cast<ssize_t>(done);
  }
}

absl::StatusOr<size_t> TlsWriteCall::Finish(absl::StatusOr<size_t> result) {
  return FinishWith(error, std::move(result));
}

}  // namespace internal

// --- TlsStream --------------------------------------------------------------------

TlsStream::TlsStream(StreamSocket socket, std::unique_ptr<internal::TlsSession> session)
    : socket_(std::move(socket)), session_(std::move(session)) {}

TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&& other) noexcept {
  if (this != &other) {
    socket_ = std::move(other.socket_);  // closes ours first, ending its operations
    session_ = std::move(other.session_);
  }
  return *this;
}
TlsStream::~TlsStream() { socket_.Close(); }

Task<absl::StatusOr<TlsStream>> TlsStream::Accept(StreamSocket socket, TlsContext context,
                                                  Cancellation cancel) {
  return Handshake(std::move(socket), std::move(context), std::string(), std::move(cancel));
}

Task<absl::StatusOr<TlsStream>> TlsStream::Connect(StreamSocket socket, TlsContext context,
                                                   std::string server_name, Cancellation cancel) {
  return Handshake(std::move(socket), std::move(context), std::move(server_name),
                   std::move(cancel));
}

namespace {

// Sets the name a client sends (SNI) and checks the certificate against.
absl::Status SetServerName(SSL* ssl, const std::string& name) {
  if (name.empty()) return absl::OkStatus();
  in6_addr address;
  const bool is_ip = ::inet_pton(AF_INET, name.c_str(), &address) == 1 ||
                     ::inet_pton(AF_INET6, name.c_str(), &address) == 1;
  bool ok;
  if (is_ip) {
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
  } else {
    ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 && SSL_set1_host(ssl, name.c_str()) == 1;
  }
  if (!ok) return ContextError(absl::StrCat("TLS server name \"", name, "\""));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<internal::TlsSession>> NewSession(const TlsContext& context, int fd,
                                                                 bool tcp,
                                                                 const std::string& server_name) {
  if (context.native_handle() == nullptr) {
    return absl::FailedPreconditionError("TLS handshake: the TlsContext is empty");
  }
  ERR_clear_error();
  auto session = std::make_unique<internal::TlsSession>();
  session->fd = fd;
  session->short_read_drains = tcp;
  session->ssl = SSL_new(context.native_handle());
  BIO* bio = session->ssl != nullptr ? BIO_new(SocketMethod()) : nullptr;
  if (bio == nullptr) return ContextError(absl::StrCat("TLS session for fd ", fd));
  BIO_set_data(bio, session.get());
  SSL_set_bio(session->ssl, bio, bio);
  if (context.is_server()) {
    SSL_set_accept_state(session->ssl);
  } else {
    SSL_set_connect_state(session->ssl);
    if (absl::Status named = SetServerName(session->ssl, server_name); !named.ok()) return named;
  }
  return session;
}

}  // namespace

namespace {

// Calls `step` (SSL_do_handshake, SSL_shutdown) until it returns at least
// `done_at`, waiting for the socket whenever OpenSSL asks to.
Task<absl::Status> Drive(StreamSocket& socket, internal::TlsSession& s, int (*step)(SSL*),
                         int done_at, const char* what, Cancellation cancel) {
  while (true) {
    ERR_clear_error();
    const int result = step(s.ssl);
    if (result >= done_at) co_return absl::OkStatus();
    const int code = SSL_get_error(s.ssl, result);
    absl::Status waited;
    if (code == SSL_ERROR_WANT_READ) {
      waited = co_await socket.Readable(cancel);
    } else if (code == SSL_ERROR_WANT_WRITE) {
      waited = co_await socket.Writable(cancel);
    } else {
      co_return SessionError(s, code, what);
    }
    if (!waited.ok()) {
      co_return absl::Status(waited.code(),
                             absl::StrCat(what, " on fd ", s.fd, ": ", waited.message()));
    }
  }
}

}  // namespace

Task<absl::StatusOr<TlsStream>> TlsStream::Handshake(StreamSocket socket, TlsContext context,
                                                     std::string server_name, Cancellation cancel) {
  absl::StatusOr<std::unique_ptr<internal::TlsSession>> session =
      NewSession(context, socket.fd(), !socket.is_unix(), server_name);
  if (!session.ok()) co_return session.status();
  internal::TlsSession& s = **session;
  s.gather_flight = true;
  absl::Status done =
      co_await Drive(socket, s, SSL_do_handshake, /*done_at=*/1, "TLS handshake", cancel);
  if (!done.ok()) co_return done;
  s.gather_flight = false;
  co_return TlsStream(std::move(socket), std::move(*session));
}

Task<absl::Status> TlsStream::Shutdown(Cancellation cancel) {
  if (session_ == nullptr || !socket_.is_open()) {
    co_return absl::FailedPreconditionError("TLS shutdown: the stream is closed");
  }
  internal::TlsSession& s = *session_;
  if (!s.failed) {
    // SSL_shutdown: 0 once ours is sent, 1 once the peer's had come too.
    absl::Status done =
        co_await Drive(socket_, s, SSL_shutdown, /*done_at=*/0, "TLS shutdown", cancel);
    if (!done.ok()) co_return done;
  }
  absl::Status half_closed = socket_.ShutdownWrite();
  if (!half_closed.ok() && absl::IsFailedPrecondition(half_closed)) co_return absl::OkStatus();
  co_return half_closed;
}

std::string_view TlsStream::version() const {
  return session_ ? SSL_get_version(session_->ssl) : "";
}

std::string_view TlsStream::cipher() const {
  if (!session_) return "";
  const SSL_CIPHER* cipher = SSL_get_current_cipher(session_->ssl);
  return cipher != nullptr ? SSL_CIPHER_get_name(cipher) : "";
}

std::string_view TlsStream::alpn() const {
  if (!session_) return "";
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(session_->ssl, &data, &length);
  return data != nullptr ? std::string_view(reinterpret_cast<const char*>(data), length) : "";
}

ssl_st* TlsStream::native_handle() const { return session_ ? session_->ssl : nullptr; }

namespace {

struct X509Deleter {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

absl::StatusOr<std::unique_ptr<X509, X509Deleter>> PeerCertificate(const TlsSession* session) {
  X509* certificate = session != nullptr ? SSL_get1_peer_certificate(session->ssl) : nullptr;
  if (certificate == nullptr) return absl::NotFoundError("the TLS peer presented no certificate");
  return std::unique_ptr<X509, X509Deleter>(certificate);
}

std::string Drain(BIO* bio) {
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(length));
}

}  // namespace

absl::StatusOr<std::string> TlsStream::PeerSubject() const {
  auto certificate = PeerCertificate(session_.get());
  if (!certificate.ok()) return certificate.status();
  std::unique_ptr<BIO, BioDeleter> out(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(out.get(), X509_get_subject_name(certificate->get()), 0, XN_FLAG_RFC2253);
  return Drain(out.get());
}

absl::StatusOr<std::string> TlsStream::PeerCertificatePem() const {
  auto certificate = PeerCertificate(session_.get());
  if (!certificate.ok()) return certificate.status();
  std::unique_ptr<BIO, BioDeleter> out(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(out.get(), certificate->get());
  return Drain(out.get());
}

}  // namespace conet
