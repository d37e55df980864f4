// File: ipc/unix_socket.h
//
// UNIX domain sockets on an EventLoop, with descriptor passing and peer
// credentials: what privilege-separated daemons talk over. UnixSocket
// carries messages (datagram and seqpacket); a UNIX stream is a
// conet::StreamSocket (net/stream_socket.h), which passes descriptors with
// ipc::SendFds/ReceiveFds (ipc/fd_passing.h), and listens with
// conet::StreamListener.
//
//   // A connected pair (e.g. for a worker process), seqpacket: messages.
//   auto pair = conet::ipc::SocketPair(conet::ipc::SocketType::kSeqPacket);
//   const std::string text = "here";
//   const std::vector<int> fds = {::open("/etc/hostname", O_RDONLY | O_CLOEXEC)};
//   absl::StatusOr<size_t> sent = co_await pair->first.SendFds(text, fds);
//   char buffer[64];
//   absl::StatusOr<conet::ipc::ReceivedMessage> got =
//       co_await pair->second.ReceiveFds(buffer, /*max_fds=*/1);
//   // got->size == 4, got->fds[0] is an owned, close-on-exec copy of fds[0]
//
//   // A listener that only lets its own user in, refusing before reading.
//   conet::ListenOptions options;
//   options.unix_mode = 0600;
//   options.allowed_uids = {::getuid()};
//   auto listener = conet::ipc::SeqPacketListener::Bind(
//       *conet::SocketAddress::Parse("unix:/run/me/broker.sock"), options);
//
// Addresses are `unix:PATH` or `unix:@ABSTRACT` (net/socket_address.h; a
// path longer than sun_path's 107 bytes is refused there). Every socket is
// SOCK_CLOEXEC | SOCK_NONBLOCK, received descriptors MSG_CMSG_CLOEXEC, sends
// MSG_NOSIGNAL. At most one receive and one send may be pending per socket;
// every awaitable takes a Cancellation and obeys the task's stop token. The
// descriptor-passing rules are those of ipc/fd_passing.h.
#ifndef CONET_IPC_UNIX_SOCKET_H_
#define CONET_IPC_UNIX_SOCKET_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ipc/credentials.h"
#include "ipc/fd_passing.h"
#include "net/async_fd.h"
#include "net/bytes.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/listen_options.h"
#include "net/socket_address.h"
#include "net/sockets/acceptor.h"
#include "net/sockets/unix_socket_file.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet::ipc {

enum class SocketType {
  kStream = SOCK_STREAM,        // a byte stream (StreamSocket); boundaries are lost
  kDatagram = SOCK_DGRAM,       // messages, unconnected or connected
  kSeqPacket = SOCK_SEQPACKET,  // messages over a connection
};

// Returns "stream", "datagram" or "seqpacket".
const char* SocketTypeName(SocketType type);

class UnixSocket {
 public:
  using SendAwaiter = AsyncFd::PerformAwaiter<internal::AttachFdsCall>;
  using ReceiveAwaiter = AsyncFd::PerformAwaiter<internal::DetachFdsCall>;

  // Connects a seqpacket socket (or a connected datagram socket) to
  // `address`. co_await yields the socket or the error naming the address;
  // kStream is InvalidArgumentError (connect a StreamSocket).
  static Task<absl::StatusOr<UnixSocket>> Connect(SocketAddress address, SocketType type,
                                                  Cancellation cancel = {});
  // Creates a datagram socket bound to `address`, registered with the
  // current loop. A path is claimed like a listener's (lock file beside it,
  // stale file reclaimed, a live one refused, both removed on Close) and its
  // file gets permission bits `mode` unless 0, never looser in between.
  static absl::StatusOr<UnixSocket> BindDatagram(const SocketAddress& address, mode_t mode = 0);
  // Creates an unbound datagram socket (to send with SendTo).
  static absl::StatusOr<UnixSocket> OpenDatagram();
  // Adopts a UNIX datagram or seqpacket descriptor (made non-blocking
  // here), registering it with `loop` (null: the current loop); its type is
  // read from SO_TYPE, and a stream is InvalidArgumentError (adopt it as a
  // StreamSocket).
  static absl::StatusOr<UnixSocket> Adopt(UniqueFd fd, EventLoop* loop = nullptr);

  UnixSocket() = default;
  UnixSocket(UnixSocket&&) = default;
  UnixSocket& operator=(UnixSocket&&) = default;

  // Sends `bytes` with copies of the descriptors `fds` (which stay the
  // caller's) as one message. co_await yields bytes.size(), or the error; too
  // many descriptors, or descriptors with no data byte, are an
  // InvalidArgumentError before any syscall. `bytes` and `fds` (the span
  // and the descriptors) must stay valid until the co_await completes.
  SendAwaiter SendFds(ConstBytes bytes, std::span<const int> fds,
                      const Cancellation& cancel = kNoCancellation);
  // Sends `bytes` alone, as one message.
  SendAwaiter Send(ConstBytes bytes, const Cancellation& cancel = kNoCancellation);
  // Sends one datagram with descriptors to `to` (an unconnected datagram
  // socket).
  SendAwaiter SendTo(ConstBytes bytes, std::span<const int> fds, const SocketAddress& to,
                     const Cancellation& cancel = kNoCancellation);
  // Receives one message into `buffer` with up to `max_fds` descriptors
  // (at most 253). co_await
  // yields the ReceivedMessage: size, the descriptors that came with those
  // bytes, the datagram sender. More descriptors than `max_fds`, a
  // truncated control message, or a message longer than `buffer` are errors
  // after which the descriptors that arrived are closed. `buffer` must stay
  // valid until the co_await completes.
  ReceiveAwaiter ReceiveFds(std::span<char> buffer, size_t max_fds,
                            const Cancellation& cancel = kNoCancellation);
  // Receives bytes alone: a descriptor arriving is an error (and closed).
  ReceiveAwaiter Receive(std::span<char> buffer, const Cancellation& cancel = kNoCancellation) {
    return ReceiveFds(buffer, 0, cancel);
  }

  // Asks the kernel to attach the sender's credentials to every message
  // received from now on (SO_PASSCRED): ReceivedMessage::credentials. Per
  // message, unlike PeerCredentials: on an unconnected datagram socket each
  // sender is told apart, and a descriptor passed on to another process
  // sends under that process's name.
  absl::Status ReceiveSenderCredentials();
  // Returns the peer's pid, uid and gid (SO_PEERCRED), as of connect time.
  absl::StatusOr<Credentials> PeerCredentials() const { return ipc::PeerCredentials(fd()); }
  // Returns a pidfd for the peer (SO_PEERPIDFD, Linux >= 6.5).
  absl::StatusOr<UniqueFd> PeerPidFd() const { return ipc::PeerPidFd(fd()); }
  // Half-closes (seqpacket): the peer reads end of stream.
  absl::Status ShutdownWrite();
  absl::StatusOr<SocketAddress> LocalAddress() const;
  absl::StatusOr<SocketAddress> PeerAddress() const;

  // Runs a system call of your own on the socket, waiting for readiness in
  // `direction` while it fails with EAGAIN (see AsyncFd::Perform and
  // NonBlockingSyscall in net/async_fd.h); Readable and Writable wait alone.
  template <NonBlockingSyscall Syscall>
  AsyncFd::PerformAwaiter<Syscall> Perform(Direction direction, const char* what, Syscall syscall,
                                           const Cancellation& cancel = kNoCancellation) {
    return fd_.Perform(direction, what, std::move(syscall), cancel);
  }
  AsyncFd::ReadinessAwaiter Readable(const Cancellation& cancel = kNoCancellation) {
    return fd_.Readable(cancel);
  }
  AsyncFd::ReadinessAwaiter Writable(const Cancellation& cancel = kNoCancellation) {
    return fd_.Writable(cancel);
  }

  [[nodiscard]] SocketType type() const noexcept { return type_; }
  [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
  // Closes the socket (removing a datagram socket's file); pending
  // operations complete with CancelledError.
  void Close() noexcept {
    fd_.Close();
    file_.Remove();
  }
  // Unregisters the socket and hands its descriptor back, still open.
  [[nodiscard]] UniqueFd Release() noexcept { return fd_.Release(); }

 private:
  friend class SeqPacketListener;
  UnixSocket(AsyncFd fd, SocketType type) : fd_(std::move(fd)), type_(type) {}
  SendAwaiter SendMessage(ConstBytes bytes, std::span<const int> fds,
                          std::optional<SocketAddress> to, const Cancellation& cancel);

  AsyncFd fd_;
  SocketType type_ = SocketType::kSeqPacket;
  sockets::UnixSocketFile file_;  // a bound datagram path
};

// Creates a connected pair of UNIX sockets of `type` (kSeqPacket or
// kDatagram), registered with `loop` (null: the current loop).
absl::StatusOr<std::pair<UnixSocket, UnixSocket>> SocketPair(SocketType type,
                                                             EventLoop* loop = nullptr);
// Creates a connected pair of UNIX streams (byte I/O, and descriptor passing
// with ipc::SendFds/ReceiveFds), registered with `loop` (null: the current
// loop).
absl::StatusOr<std::pair<StreamSocket, StreamSocket>> StreamPair(EventLoop* loop = nullptr);
// Creates the pair as plain descriptors (close-on-exec, non-blocking), of
// any type, for handing one end to another process.
absl::StatusOr<std::pair<UniqueFd, UniqueFd>> SocketPairFds(SocketType type);

// A listening UNIX seqpacket socket (a stream listens with StreamListener).
class SeqPacketListener {
 public:
  // Binds and listens on `address` (see StreamListener::Bind for the
  // socket file's lock, stale-file reclaim and removal; of `options`,
  // backlog, unix_mode, allowed_uids and refusal apply), registered with
  // `loop` (null: the current loop).
  static absl::StatusOr<SeqPacketListener> Bind(const SocketAddress& address,
                                                const ListenOptions& options = {},
                                                EventLoop* loop = nullptr);
  // Adopts a listening UNIX seqpacket socket (e.g. from ListenFds); of
  // `options`, allowed_uids and refusal apply.
  static absl::StatusOr<SeqPacketListener> Adopt(UniqueFd fd, const ListenOptions& options = {},
                                                 EventLoop* loop = nullptr);

  SeqPacketListener() = default;
  SeqPacketListener(SeqPacketListener&&) = default;
  SeqPacketListener& operator=(SeqPacketListener&&) = default;

  // Accepts one connection. co_await yields it, or PermissionDeniedError for
  // a peer whose uid is not allowed (already closed; the message names its
  // pid and uid, to log), or the errors and back-off of
  // StreamListener::Accept. At most one pending Accept; the listener must
  // outlive it.
  Task<absl::StatusOr<UnixSocket>> Accept(Cancellation cancel = {});

  [[nodiscard]] const SocketAddress& address() const { return acceptor_.address(); }
  [[nodiscard]] int fd() const noexcept { return acceptor_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return acceptor_.is_open(); }
  // Stops listening; removes the socket file (and its lock) this listener made.
  void Close() noexcept { acceptor_.Close(); }

 private:
  explicit SeqPacketListener(sockets::Acceptor acceptor) : acceptor_(std::move(acceptor)) {}

  sockets::Acceptor acceptor_;
};

}  // namespace conet::ipc

#endif  // CONET_IPC_UNIX_SOCKET_H_
