// File: net/sockets/connector.h
//
// ConnectSocket is the non-blocking connect behind StreamSocket::Connect and
// ipc::UnixSocket::Connect: a fresh socket registered with the current
// loop, connect(2), then a wait for writability and SO_ERROR (TCP), or,
// when a UNIX listener's queue is full (EAGAIN, with nothing to wait on),
// short sleeps and a new attempt, until the Cancellation ends it.
#ifndef CONET_NET_SOCKETS_CONNECTOR_H_
#define CONET_NET_SOCKETS_CONNECTOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "net/async_fd.h"
#include "net/cancellation.h"
#include "net/socket_address.h"
#include "net/task.h"

namespace conet::sockets {

// Connects a socket of `type` (SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM) to
// `address`; errors start with `what` ("connect to 127.0.0.1:80").
Task<absl::StatusOr<AsyncFd>> ConnectSocket(SocketAddress address, int type, std::string what,
                                            Cancellation cancel);

}  // namespace conet::sockets

#endif  // CONET_NET_SOCKETS_CONNECTOR_H_
