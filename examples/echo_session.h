// File: examples/echo_session.h
//
// Echo is the per-connection loop of conet's echo servers
// (examples/echo_server, examples/privsep_server): read what is there,
// write it all back, until the client closes its side.
#ifndef CONET_EXAMPLES_ECHO_SESSION_H_
#define CONET_EXAMPLES_ECHO_SESSION_H_

#include "net/stream_socket.h"
#include "net/task.h"

namespace conet::examples {

// Echoes until the client closes its side or the connection fails, then
// closes the stream.
Task<void> Echo(StreamSocket stream);

}  // namespace conet::examples

#endif  // CONET_EXAMPLES_ECHO_SESSION_H_
