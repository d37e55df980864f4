// File: ipc/fd_passing.h
//
// SCM_RIGHTS descriptor passing, done the way man 7 unix says it must be:
// on UNIX streams (StreamSocket, with SendFds/ReceiveFds below) and on
// datagram and seqpacket sockets (UnixSocket's SendFds/ReceiveFds, in
// ipc/unix_socket.h), with the same rules:
//
//   // An accepted unix: stream does byte I/O and passes descriptors.
//   absl::StatusOr<conet::StreamSocket> conn = co_await listener->Accept();
//   co_await conet::ipc::SendFds(*conn, "file", std::span<const int>(&file_fd, 1));
//   absl::StatusOr<size_t> n = co_await conn->ReadSome(buffer);
//
// The kernel charges descriptors in flight (sent, not yet received) to the
// sending user; past its RLIMIT_NOFILE (without CAP_SYS_RESOURCE) a send
// with descriptors fails with ETOOMANYREFS, which SendFds reports as
// ResourceExhaustedError saying so: the socket is still usable, and the
// same bytes can go without descriptors.
//
// Sending: at most kMaxFdsPerMessage (253, the kernel's SCM_MAX_FD)
// descriptors per sendmsg, checked before any syscall; a message carrying
// descriptors carries at least one data byte (on a stream, zero bytes plus
// descriptors loses the descriptors; on seqpacket/datagram the receiver
// could not tell it from end of stream); on a stream, a partial write never
// sends the descriptors again with the rest. Sends use MSG_NOSIGNAL.
//
// Receiving: with MSG_CMSG_CLOEXEC, into a control buffer sized for the
// caller's maximum. More descriptors than that maximum (the kernel can fit
// one more than asked in CMSG_SPACE's rounding), MSG_CTRUNC (no room, or
// RLIMIT_NOFILE reached while installing them) and, on datagram/seqpacket,
// MSG_TRUNC (the message did not fit the buffer) are errors, and every
// descriptor that did arrive is closed. Nothing is dropped silently.
#ifndef CONET_IPC_FD_PASSING_H_
#define CONET_IPC_FD_PASSING_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ipc/credentials.h"
#include "ipc/internal/fd_passing_calls.h"
#include "net/async_fd.h"
#include "net/bytes.h"
#include "net/cancellation.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/unique_fd.h"

namespace conet::ipc {

// SCM_MAX_FD: the most descriptors one sendmsg can carry.
inline constexpr size_t kMaxFdsPerMessage = 253;

// What one receive delivered: the bytes and the descriptors that arrived
// with exactly those bytes.
struct ReceivedMessage {
  // Bytes stored in the buffer. 0 is end of stream on a stream socket; on
  // seqpacket it is end of stream or an empty message, which the kernel does
  // not tell apart (ipc::Channel never sends empty messages).
  size_t size = 0;
  // The descriptors that came with these bytes, owned and close-on-exec.
  std::vector<UniqueFd> fds;
  // The sender, on a datagram socket whose peer is bound to a name.
  std::optional<SocketAddress> from;
  // Who sent this message (SCM_CREDENTIALS), on a socket that asked for
  // them (UnixSocket::ReceiveSenderCredentials): the sending process's pid
  // (in this process's pid namespace), uid and gid when it sent. The kernel
  // fills them in; only a process with CAP_SYS_ADMIN (pid) or
  // CAP_SETUID/CAP_SETGID may claim others.
  std::optional<Credentials> credentials;
};

// Returns OK if `bytes` data bytes with `fds` descriptors may be sent, or
// InvalidArgumentError saying why not.
absl::Status CheckSendFds(size_t bytes, size_t fds);

// Descriptor passing on a UNIX stream: the bytes and descriptors of
// UnixSocket::SendFds and ReceiveFds (ipc/unix_socket.h), on a StreamSocket
// (an accepted or connected `unix:` stream, or one end of StreamPair). Each
// is the socket's pending write or read; plain ReadSome/WriteAll work on the
// same socket between them.
using SendFdsAwaiter = AsyncFd::PerformAwaiter<internal::AttachFdsCall>;
using ReceiveFdsAwaiter = AsyncFd::PerformAwaiter<internal::DetachFdsCall>;

// Sends all of `bytes` with copies of `fds` (which stay the caller's),
// attached to the first write only. co_await yields bytes.size(), or the
// error: InvalidArgumentError for too many descriptors or descriptors with
// no data byte, FailedPreconditionError on a stream that is not UNIX, both
// before any syscall. `bytes` and `fds` must stay valid until completion.
SendFdsAwaiter SendFds(StreamSocket& stream, ConstBytes bytes, std::span<const int> fds,
                       const Cancellation& cancel = kNoCancellation);
// Receives what is available into `buffer` with up to `max_fds` (at most
// 253) descriptors. The kernel hands descriptors to the read that returns
// bytes of the send that carried them, and ends that read at the end of
// that send. More descriptors than `max_fds` is an error after which those
// that arrived are closed. co_await yields the ReceivedMessage (size 0: end
// of stream).
ReceiveFdsAwaiter ReceiveFds(StreamSocket& stream, std::span<char> buffer, size_t max_fds,
                             const Cancellation& cancel = kNoCancellation);

}  // namespace conet::ipc

#endif  // CONET_IPC_FD_PASSING_H_
