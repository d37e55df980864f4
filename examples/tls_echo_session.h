// File: examples/tls_echo_session.h
//
// EchoTls is echo_server's connection under --cert/--key: the TLS handshake
// within a deadline, then the echo, then close_notify.
#ifndef CONET_EXAMPLES_TLS_ECHO_SESSION_H_
#define CONET_EXAMPLES_TLS_ECHO_SESSION_H_

#include "absl/time/time.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/tls.h"

namespace conet::examples {

// Runs the server's handshake on `stream` (closing a peer that has not
// finished it within `handshake_timeout`, or that speaks plaintext or
// garbage), echoes until the client's close_notify, and answers with its
// own.
Task<void> EchoTls(StreamSocket stream, TlsContext context, absl::Duration handshake_timeout);

}  // namespace conet::examples

#endif  // CONET_EXAMPLES_TLS_ECHO_SESSION_H_
