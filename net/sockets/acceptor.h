// File: net/sockets/acceptor.h
//
// Acceptor is the listening socket behind StreamListener (net/stream_socket.h) and
// ipc::UnixListener (ipc/unix_socket.h): bind and listen for stream or
// seqpacket sockets, accept4 with back-off when descriptors run out, and the
// life cycle of a UNIX socket file (mode, stale-file reclaim, removal).
//
// A UNIX path's socket file is managed by UnixSocketFile (lock file,
// stale-file reclaim, mode, removal).
#ifndef CONET_NET_SOCKETS_ACCEPTOR_H_
#define CONET_NET_SOCKETS_ACCEPTOR_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/async_fd.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/socket_address.h"
#include "net/sockets/unix_socket_file.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::sockets {

struct AcceptorOptions {
  int type = 0;  // SOCK_STREAM or SOCK_SEQPACKET
  bool reuse_address = true;
  bool reuse_port = false;
  int backlog = 0;
  bool v6_only = false;
  mode_t unix_mode = 0;  // chmod for a UNIX socket file; 0 keeps the umask's
};

class Acceptor {
 public:
  // Binds and listens on `address`, registered with `loop`.
  static absl::StatusOr<Acceptor> Bind(const SocketAddress& address, const AcceptorOptions& options,
                                       EventLoop& loop);
  // Adopts a socket already listening.
  static absl::StatusOr<Acceptor> Adopt(UniqueFd fd, EventLoop& loop);

  Acceptor() = default;
  Acceptor(Acceptor&&) = default;
  Acceptor& operator=(Acceptor&&) = default;
  ~Acceptor() { Close(); }

  // Accepts one connection, close-on-exec and non-blocking (see
  // StreamListener::Accept for the errors and the back-off).
  Task<absl::StatusOr<UniqueFd>> Accept(Cancellation cancel);

  const SocketAddress& address() const { return *address_; }
  int fd() const noexcept { return fd_.fd(); }
  bool is_open() const noexcept { return fd_.is_open(); }
  EventLoop* loop() const noexcept { return fd_.loop(); }
  absl::Duration backoff() const { return backoff_; }
  // Stops listening; removes the socket file and lock this acceptor owns.
  void Close() noexcept;

 private:
  AsyncFd fd_;
  std::optional<SocketAddress> address_;
  UnixSocketFile file_;  // a UNIX path's socket file and lock
  absl::Duration backoff_ = absl::ZeroDuration();
  absl::Time resume_at_ = absl::InfinitePast();
};

}  // namespace conet::sockets

#endif  // CONET_NET_SOCKETS_ACCEPTOR_H_
