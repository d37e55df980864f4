// File: net/sockets/acceptor.h
//
// Acceptor is the listening socket behind StreamListener
// (net/stream_socket.h) and ipc::SeqPacketListener (ipc/unix_socket.h): bind
// and listen for stream or seqpacket sockets, accept4 with back-off when
// descriptors run out, admission of UNIX peers by uid, and the life cycle
// of a UNIX socket file (mode, stale-file reclaim, removal).
//
// A UNIX path's socket file is managed by UnixSocketFile (lock file,
// stale-file reclaim, mode, removal).
#ifndef CONET_NET_SOCKETS_ACCEPTOR_H_
#define CONET_NET_SOCKETS_ACCEPTOR_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/async_fd.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/listen_options.h"
#include "net/socket_address.h"
#include "net/sockets/unix_socket_file.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::sockets {

class Acceptor {
 public:
  // Binds and listens on `address` with a socket of `type` (SOCK_STREAM or
  // SOCK_SEQPACKET), registered with `loop`.
  static absl::StatusOr<Acceptor> Bind(const SocketAddress& address, int type,
                                       const ListenOptions& options, EventLoop& loop);
  // Adopts a socket already listening.
  // Adopts a socket already listening; only `options.allowed_uids` and
  // `options.refusal` apply.
  static absl::StatusOr<Acceptor> Adopt(UniqueFd fd, const ListenOptions& options, EventLoop& loop);

  Acceptor() = default;
  Acceptor(Acceptor&&) = default;
  Acceptor& operator=(Acceptor&&) = default;
  ~Acceptor() { Close(); }

  // Accepts one connection, close-on-exec and non-blocking (see
  // StreamListener::Accept for the errors and the back-off).
  Task<absl::StatusOr<UniqueFd>> Accept(Cancellation cancel);
  // Accepts a connection already queued, without waiting: UnavailableError
  // when none is.
  absl::StatusOr<UniqueFd> TryAccept();

  const SocketAddress& address() const { return *address_; }
  int fd() const noexcept { return fd_.fd(); }
  bool is_open() const noexcept { return fd_.is_open(); }
  EventLoop* loop() const noexcept { return fd_.loop(); }
  absl::Duration backoff() const { return backoff_; }
  // Stops listening; removes the socket file and lock this acceptor owns.
  void Close() noexcept;

 private:
  // Returns PermissionDenied (after sending the refusal) if the peer's uid
  // is not allowed.
  absl::Status CheckPeer(int fd) const;

  AsyncFd fd_;
  std::vector<uid_t> allowed_uids_;
  std::string refusal_;
  std::optional<SocketAddress> address_;
  UnixSocketFile file_;  // a UNIX path's socket file and lock
  absl::Duration backoff_ = absl::ZeroDuration();
  absl::Time resume_at_ = absl::InfinitePast();
};

}  // namespace conet::sockets

#endif  // CONET_NET_SOCKETS_ACCEPTOR_H_
