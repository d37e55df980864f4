#include "net/tls.h"

int main() {
  // A client context on the system's trust store; a server one without a
  // certificate is refused with OpenSSL's reason.
  absl::StatusOr<conet::TlsContext> client = conet::TlsContext::Client({});
  absl::StatusOr<conet::TlsContext> server = conet::TlsContext::Server({});
  return client.ok() && !server.ok() && !server.status().message().empty() ? 0 : 1;
}
