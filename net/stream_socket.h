// File: net/stream_socket.h
//
// Stream sockets on an EventLoop: StreamListener accepts connections and
// StreamSocket reads and writes them. Both speak TCP over IPv4 and IPv6 and,
// with the same API, UNIX stream sockets (`unix:/path`, `unix:@name`).
//
//   absl::StatusOr<conet::StreamListener> listener = conet::StreamListener::Bind(
//       *conet::SocketAddress::Parse("127.0.0.1:0"));
//   // listener->address() is what was bound, e.g. 127.0.0.1:43125
//   absl::StatusOr<conet::StreamSocket> conn = co_await listener->Accept();
//   char buf[4096];
//   absl::StatusOr<size_t> n = co_await conn->ReadSome(buf);   // 0 at EOF
//   absl::StatusOr<size_t> sent =
//       co_await conn->WriteAll(std::span<const char>(buf, *n));  // or "text"
//
//   // Client side: names are resolved off the loop, each address tried.
//   absl::StatusOr<conet::StreamSocket> client = co_await conet::StreamSocket::Connect(
//       "localhost:7007", conet::Within(absl::Seconds(5)));
//
// Every socket is created SOCK_CLOEXEC | SOCK_NONBLOCK, accepted ones too;
// every send uses MSG_NOSIGNAL, so a peer that resets yields an EPIPE or
// ECONNRESET status, never SIGPIPE. I/O is optimistic: the syscall is tried
// first and the coroutine suspends only on EAGAIN. A socket belongs to the
// loop it was created on; at most one read and one write may be pending on
// it at a time (full duplex), and a second one fails with
// FailedPreconditionError. Every awaitable takes a Cancellation (stop token
// and/or deadline) and also obeys the awaiting task's stop token; a
// cancelled operation yields CancelledError or DeadlineExceededError.
#ifndef CONET_NET_TCP_H_
#define CONET_NET_TCP_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/async_fd.h"
#include "net/bytes.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/stream_calls.h"
#include "net/listen_options.h"
#include "net/socket_address.h"
#include "net/sockets/acceptor.h"
#include "net/task.h"
#include "net/unique_fd.h"

namespace conet {

// A connected stream socket: TCP (IPv4, IPv6) or UNIX stream.
class StreamSocket {
 public:
  using ReadAwaiter = AsyncFd::PerformAwaiter<internal::ReadCall>;
  using ReadExactAwaiter = AsyncFd::PerformAwaiter<internal::ReadExactCall>;
  using WriteAwaiter = AsyncFd::PerformAwaiter<internal::SendCall>;
  using WriteAllAwaiter = AsyncFd::PerformAwaiter<internal::SendAllCall>;
  using ReadvAwaiter = AsyncFd::PerformAwaiter<internal::ReadvCall>;
  using WritevAwaiter = AsyncFd::PerformAwaiter<internal::SendmsgCall>;
  using WritevAllAwaiter = AsyncFd::PerformAwaiter<internal::SendmsgAllCall>;
  using SendFileAwaiter = AsyncFd::PerformAwaiter<internal::SendFileCall>;

  // Connects to `address` on the current loop: a non-blocking connect(2),
  // then a wait for writability and SO_ERROR. co_await yields the stream,
  // or the error naming the address ("connect to 127.0.0.1:9: Connection
  // refused"). A UNIX listener with a full backlog is retried until the
  // Cancellation ends the attempt.
  static Task<absl::StatusOr<StreamSocket>> Connect(SocketAddress address,
                                                    Cancellation cancel = {});
  // Resolves `target` (see net/resolve.h: "host:port", a literal address or
  // a unix: address) and connects to each address in turn until one
  // accepts. The Cancellation bounds the whole attempt, resolution included.
  // If every address fails, the error lists each one's reason.
  static Task<absl::StatusOr<StreamSocket>> Connect(std::string target, Cancellation cancel = {});
  // Adopts a connected, non-blocking stream socket, registering it with
  // `loop` (null: the loop running on this thread).
  static absl::StatusOr<StreamSocket> Adopt(UniqueFd fd, EventLoop* loop = nullptr);

  StreamSocket() = default;
  StreamSocket(StreamSocket&&) = default;
  StreamSocket& operator=(StreamSocket&&) = default;

  // Reads what is available, at most `buffer.size()` bytes, waiting until
  // at least one byte is. co_await yields the count, 0 at end of stream (or
  // for an empty buffer), or the error. `buffer` must stay valid until the
  // co_await completes. At most one pending read.
  ReadAwaiter ReadSome(std::span<char> buffer, const Cancellation& cancel = kNoCancellation);
  // Reads exactly `buffer.size()` bytes. co_await yields that count, or
  // OutOfRangeError if the stream ended first (the message says after how
  // many bytes; those bytes are in `buffer`). Cancelled midway, the bytes
  // already read are in `buffer` but their count is lost: treat the stream
  // as unusable.
  ReadExactAwaiter ReadExact(std::span<char> buffer, const Cancellation& cancel = kNoCancellation);
  // Writes as much of `data` as the socket takes now, waiting until it takes
  // at least one byte. co_await yields the count written. `data` must stay
  // valid until the co_await completes. At most one pending write.
  WriteAwaiter WriteSome(ConstBytes data, const Cancellation& cancel = kNoCancellation);
  // Writes all of `data`, waiting as often as needed. co_await yields
  // data.size(), or the error; cancelled or failed midway, an unknown prefix
  // was sent.
  WriteAllAwaiter WriteAll(ConstBytes data, const Cancellation& cancel = kNoCancellation);
  // Scatter read (readv): fills `buffers` in order, like ReadSome. The
  // iovecs and the memory they point to must stay valid until completion.
  ReadvAwaiter ReadSomeV(std::span<const iovec> buffers,
                         const Cancellation& cancel = kNoCancellation);
  // Gather write (sendmsg with MSG_NOSIGNAL): like WriteSome.
  WritevAwaiter WriteSomeV(std::span<const iovec> buffers,
                           const Cancellation& cancel = kNoCancellation);
  // Gather write of everything in `buffers` (the iovec array is copied;
  // the memory it points to must stay valid). co_await yields the total.
  WritevAllAwaiter WriteAllV(std::span<const iovec> buffers,
                             const Cancellation& cancel = kNoCancellation);

  // Sends `count` bytes of the file `file_fd` from `offset` without copying
  // them through user space (sendfile(2)), waiting as often as needed.
  // `offset` advances with every byte sent, so after an error or a
  // cancellation it says how far the transfer got. co_await yields
  // `count`, OutOfRangeError if the file ends first, or the error. As with
  // every send, a peer that has gone is an EPIPE status, never SIGPIPE
  // (sendfile has no MSG_NOSIGNAL: SIGPIPE is blocked around it). `file_fd`
  // is a regular file (or anything that never fails with EAGAIN).
  SendFileAwaiter SendFile(int file_fd, off_t& offset, size_t count,
                           const Cancellation& cancel = kNoCancellation) {
    return fd_.Perform(Direction::kWrite,
                       internal::SendFileCall{fd_.fd(), file_fd, &offset, count, /*all=*/true},
                       cancel);
  }
  // Sends `head` (a response head, say), then `count` bytes of the file as
  // SendFile does: the head goes with MSG_MORE, so that it leaves in the
  // body's first segment rather than a segment of its own. co_await yields
  // `count` (the head is not counted), OutOfRangeError if the file ends
  // first, or the error; `head` must stay valid until it completes.
  SendFileAwaiter SendFileAfter(ConstBytes head, int file_fd, off_t& offset, size_t count,
                                const Cancellation& cancel = kNoCancellation) {
    internal::SendFileCall call{fd_.fd(), file_fd, &offset, count, /*all=*/true};
    call.head = head.data();
    call.head_size = head.size();
    return fd_.Perform(Direction::kWrite, std::move(call), cancel);
  }
  // One sendfile(2) of at most `count` bytes, waiting until the socket takes
  // at least one: yields the count sent (0 at the end of the file).
  SendFileAwaiter SendFileSome(int file_fd, off_t& offset, size_t count,
                               const Cancellation& cancel = kNoCancellation) {
    return fd_.Perform(Direction::kWrite,
                       internal::SendFileCall{fd_.fd(), file_fd, &offset, count, /*all=*/false},
                       cancel);
  }
  // Half-closes: the peer reads end of stream; reading here goes on.
  absl::Status ShutdownWrite();
  // Sets TCP_NODELAY (send small writes at once). TCP only.
  absl::Status SetNoDelay(bool enable);
  // Turns TCP keep-alive probes on (`idle` before the first probe, then
  // every `interval`, giving up after `count` unanswered ones) or off. TCP
  // only.
  absl::Status SetKeepAlive(bool enable, absl::Duration idle = absl::Seconds(60),
                            absl::Duration interval = absl::Seconds(10), int count = 5);
  // Returns the local address (getsockname).
  absl::StatusOr<SocketAddress> LocalAddress() const;
  // Returns the peer's address (getpeername); a UNIX client that did not
  // bind is the unnamed address `unix:`.
  absl::StatusOr<SocketAddress> PeerAddress() const;

  // Runs a system call of your own on the socket (sendfile, splice,
  // another library's non-blocking I/O), waiting for readiness in
  // `direction` while it fails with EAGAIN: see AsyncFd::Perform and
  // NonBlockingSyscall (net/async_fd.h). It counts as the pending read or
  // write of that direction.
  template <NonBlockingSyscall Syscall>
  AsyncFd::PerformAwaiter<Syscall> Perform(Direction direction, const char* what, Syscall syscall,
                                           const Cancellation& cancel = kNoCancellation) {
    return fd_.Perform(direction, what, std::move(syscall), cancel);
  }
  template <NonBlockingSyscall Syscall>
  requires internal::SyscallNamesItself<Syscall> AsyncFd::PerformAwaiter<Syscall> Perform(
      Direction direction, Syscall syscall, const Cancellation& cancel = kNoCancellation) {
    return fd_.Perform(direction, std::move(syscall), cancel);
  }
  // Await readability or writability alone, after your own syscall failed
  // with EAGAIN (the socket is edge-triggered).
  AsyncFd::ReadinessAwaiter Readable(const Cancellation& cancel = kNoCancellation) {
    return fd_.Readable(cancel);
  }
  AsyncFd::ReadinessAwaiter Writable(const Cancellation& cancel = kNoCancellation) {
    return fd_.Writable(cancel);
  }

  // Returns the descriptor (-1 once closed), keeping ownership.
  [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
  // Reports whether this is a UNIX stream (which can carry descriptors: see
  // ipc::SendFds in ipc/fd_passing.h) rather than TCP.
  [[nodiscard]] bool is_unix() const noexcept { return kind_ == internal::StreamKind::kUnix; }
  // Closes the socket; pending operations complete with CancelledError.
  void Close() noexcept { fd_.Close(); }
  // Unregisters the socket and hands its descriptor back, still open.
  [[nodiscard]] UniqueFd Release() noexcept { return fd_.Release(); }

 private:
  friend class StreamListener;
  StreamSocket(AsyncFd fd, internal::StreamKind kind);
  static absl::StatusOr<StreamSocket> Adopt(UniqueFd fd, EventLoop* loop,
                                            internal::StreamKind kind);
  absl::Status RequireTcp(const char* what) const;

  // no_unique_address lets the flags below sit in its tail padding.
  [[no_unique_address]] AsyncFd fd_;
  // Asks the kernel to report, with each ReadExact, how many bytes are
  // left queued (TCP_INQ, or SO_INQ on UNIX streams where the kernel has
  // it), so that a read that empties the queue lets the next one wait for
  // the edge instead of failing with EAGAIN. Tried once, on the first
  // ReadExact.
  void EnableInq();
  // The control message level of the "bytes left" report (0: none).
  int InqLevel() const {
    if (!inq_enabled_) return 0;
    return kind_ == internal::StreamKind::kUnix ? SOL_SOCKET : IPPROTO_TCP;
  }

  // kUnix: reads go through recvmsg (ReadCall).
  internal::StreamKind kind_ = internal::StreamKind::kOther;
  bool inq_tried_ = false;
  bool inq_enabled_ = false;
};

// A listening stream socket: TCP or UNIX.
class StreamListener {
 public:
  // Creates, binds and listens on `address` (port 0: an ephemeral port),
  // registering the socket with `loop` (null: the current loop). A UNIX path
  // is guarded by a lock file beside it (`PATH.lock`, flock(2)) while the
  // listener lives: a socket file left by a listener that died is replaced,
  // and a live listener's name is refused with EADDRINUSE, without races
  // between listeners starting at once. Close() removes both files.
  static absl::StatusOr<StreamListener> Bind(const SocketAddress& address,
                                             const ListenOptions& options = {},
                                             EventLoop* loop = nullptr);
  // Adopts a socket already listening (e.g. from systemd), registering it
  // with `loop` (null: the current loop). Of `options`, only allowed_uids
  // and refusal apply: the socket is set up already.
  static absl::StatusOr<StreamListener> Adopt(UniqueFd fd, const ListenOptions& options = {},
                                              EventLoop* loop = nullptr);

  StreamListener() = default;
  StreamListener(StreamListener&&) = default;
  StreamListener& operator=(StreamListener&&) = default;

  // Accepts one connection (accept4 with SOCK_CLOEXEC | SOCK_NONBLOCK). The
  // new stream is registered with the listener's loop. co_await yields it,
  // or an error naming the listener's address. Errors that belong to the
  // aborted connection (ECONNABORTED, a pending network error) are skipped.
  // When the process or system is out of descriptors or memory (EMFILE,
  // ENFILE, ENOBUFS, ENOMEM) the error is returned as ResourceExhausted so a
  // server can log it, and the listener backs off: the next Accept() first
  // waits (5 ms, doubling to 200 ms while the shortage lasts) and then
  // tries again. The pending connections stay in the kernel's queue and
  // nothing spins. At most one pending Accept; the listener must outlive it.
  Task<absl::StatusOr<StreamSocket>> Accept(Cancellation cancel = {});
  // Accepts a connection the kernel has already queued, without waiting:
  // UnavailableError when none is. A server that stops accepts what is
  // queued before it closes its listener, since closing resets those
  // connections (with SO_REUSEPORT, only the closed listener's queue).
  absl::StatusOr<StreamSocket> TryAccept();

  // Returns the address bound (with the real port when port 0 was asked).
  [[nodiscard]] const SocketAddress& address() const { return acceptor_.address(); }
  // Returns the descriptor (-1 once closed), keeping ownership.
  [[nodiscard]] int fd() const noexcept { return acceptor_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return acceptor_.is_open(); }
  // Returns the delay the next Accept() waits first (zero unless starved).
  [[nodiscard]] absl::Duration backoff() const { return acceptor_.backoff(); }
  // Stops listening and removes a UNIX socket file this listener created.
  void Close() noexcept { acceptor_.Close(); }

 private:
  StreamListener(sockets::Acceptor acceptor, internal::StreamKind kind)
      : acceptor_(std::move(acceptor)), kind_(kind) {}

  sockets::Acceptor acceptor_;
  internal::StreamKind kind_ = internal::StreamKind::kOther;  // of accepted streams
};

// Implementation details follow.

// The four plain transfers are defined here so that the awaiting coroutine
// builds the awaiter in place, without a call.
inline StreamSocket::ReadAwaiter StreamSocket::ReadSome(std::span<char> buffer,
                                                        const Cancellation& cancel) {
  return fd_.Perform(Direction::kRead,
                     internal::ReadCall{.fd = fd_.fd(),
                                        .unix_stream = kind_ == internal::StreamKind::kUnix,
                                        .data = buffer.data(),
                                        .size = buffer.size()},
                     cancel);
}

inline StreamSocket::ReadExactAwaiter StreamSocket::ReadExact(std::span<char> buffer,
                                                              const Cancellation& cancel) {
  if (!inq_tried_) [[unlikely]]
    EnableInq();
  return fd_.Perform(Direction::kRead,
                     internal::ReadExactCall{fd_.fd(), InqLevel(), buffer.data(), buffer.size()},
                     cancel);
}

inline StreamSocket::WriteAwaiter StreamSocket::WriteSome(ConstBytes data,
                                                          const Cancellation& cancel) {
  return fd_.Perform(Direction::kWrite, internal::SendCall{fd_.fd(), data.data(), data.size()},
                     cancel);
}

inline StreamSocket::WriteAllAwaiter StreamSocket::WriteAll(ConstBytes data,
                                                            const Cancellation& cancel) {
  return fd_.Perform(Direction::kWrite, internal::SendAllCall{fd_.fd(), data.data(), data.size()},
                     cancel);
}

}  // namespace conet

#endif  // CONET_NET_TCP_H_
