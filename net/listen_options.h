// File: net/listen_options.h
//
// ListenOptions: how a listening socket is set up (queue length, address
// reuse, a UNIX socket file's mode, which local users may connect).
#ifndef CONET_NET_LISTEN_OPTIONS_H_
#define CONET_NET_LISTEN_OPTIONS_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace conet {

// How a listener (StreamListener in net/stream_socket.h, or
// ipc::SeqPacketListener) sets up its socket. Build it as a named variable
// (or pass it to Bind, which is not a coroutine): e.g.
//   conet::ListenOptions options{.reuse_port = true, .backlog = 1024};
struct ListenOptions {
  // SO_REUSEADDR: rebind a port with connections in TIME_WAIT (TCP only).
  bool reuse_address = true;
  // SO_REUSEPORT: several sockets (one per loop) share the port and the
  // kernel spreads connections among them (TCP only).
  bool reuse_port = false;
  // The accept queue length passed to listen(2).
  int backlog = SOMAXCONN;
  // IPV6_V6ONLY: an IPv6 wildcard listener takes no IPv4 connections.
  bool v6_only = false;
  // The permission bits of a UNIX socket file (e.g. 0660: owner and group
  // may connect), set before the socket listens; 0 leaves the umask's.
  mode_t unix_mode = 0;
  // UNIX only: if not empty, only peers with one of these uids
  // (SO_PEERCRED) are accepted. Any other is sent `refusal` (if not empty)
  // and closed, and Accept() reports PermissionDeniedError naming its pid
  // and uid. Nothing it sent is acted on: what already arrived is discarded
  // unread (descriptors closed), so that the peer reads the refusal rather
  // than a connection reset.
  std::vector<uid_t> allowed_uids;
  std::string refusal;
};

}  // namespace conet

#endif  // CONET_NET_LISTEN_OPTIONS_H_
