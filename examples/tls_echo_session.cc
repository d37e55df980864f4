#include "examples/tls_echo_session.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "examples/echo_session.h"

namespace conet::examples {

Task<void> EchoTls(StreamSocket stream, TlsContext context, absl::Duration handshake_timeout) {
  const Cancellation handshake_deadline = Within(handshake_timeout);
  absl::StatusOr<TlsStream> tls =
      co_await TlsStream::Accept(std::move(stream), std::move(context), handshake_deadline);
  if (!tls.ok()) co_return;  // a failed handshake is the peer's problem, not logged
  const bool ended = co_await EchoUntilEnd(*tls);
  if (!ended) co_return;
  // The client's close_notify: everything is echoed; answer with ours.
  const Cancellation close_deadline = Within(absl::Seconds(5));
  (void)co_await tls->Shutdown(close_deadline);
}

}  // namespace conet::examples
