// File: ipc/fd_passing.h
//
// SCM_RIGHTS descriptor passing, done the way man 7 unix says it must be:
// the pieces UnixSocket's SendFds/ReceiveFds are made of, usable on any
// non-blocking UNIX socket (stream, datagram, seqpacket).
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
#include "net/socket_address.h"
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
};

// Returns OK if `bytes` data bytes with `fds` descriptors may be sent, or
// InvalidArgumentError saying why not.
absl::Status CheckSendFds(size_t bytes, size_t fds);

namespace internal {

// sendmsg of data plus descriptors, for AsyncFd::Perform. On a stream
// (`whole`) it goes on until every byte is sent, attaching the descriptors
// to the first write only; otherwise one sendmsg is one message.
struct AttachFdsCall {
  int fd;
  const char* data;
  size_t size;
  std::span<const int> fds;  // the caller's, valid until completion
  std::optional<SocketAddress> to;
  bool whole;
  size_t done = 0;
  bool fds_sent = false;
  // sendmsg failed with ETOOMANYREFS (reported as ResourceExhausted).
  bool too_many_in_flight = false;
  // Not OK: refused up front (CheckSendFds); no syscall is made.
  absl::Status invalid;
  ssize_t operator()();
  absl::StatusOr<size_t> Finish(absl::StatusOr<size_t> result) const;
};

// recvmsg with MSG_CMSG_CLOEXEC, taking ownership of every descriptor the
// kernel installed, for AsyncFd::Perform.
struct DetachFdsCall {
  int fd;
  char* data;
  size_t size;
  size_t max_fds;
  bool message_based;  // datagram or seqpacket: MSG_TRUNC is an error
  bool want_sender;    // datagram: report the sender's address
  std::vector<UniqueFd> fds;
  int msg_flags = 0;
  sockaddr_storage from{};
  socklen_t from_len = 0;
  ssize_t operator()();
  absl::StatusOr<ReceivedMessage> Finish(absl::StatusOr<size_t> result);
};

}  // namespace internal
}  // namespace conet::ipc

#endif  // CONET_IPC_FD_PASSING_H_
