// File: ipc/internal/fd_passing_calls.h
//
// The system calls behind descriptor passing (ipc/fd_passing.h), as
// NonBlockingSyscall objects for AsyncFd::Perform. Not part of the
// application API; the out-of-line members are defined in //ipc:fd_passing.
#ifndef CONET_IPC_INTERNAL_FD_PASSING_CALLS_H_
#define CONET_IPC_INTERNAL_FD_PASSING_CALLS_H_

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

struct ReceivedMessage;  // ipc/fd_passing.h

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
  std::optional<ucred> credentials;  // SCM_CREDENTIALS (SO_PASSCRED on)
  int msg_flags = 0;
  sockaddr_storage from{};
  socklen_t from_len = 0;
  ssize_t operator()();
  absl::StatusOr<ReceivedMessage> Finish(absl::StatusOr<size_t> result);
};

}  // namespace internal
}  // namespace conet::ipc

#endif  // CONET_IPC_INTERNAL_FD_PASSING_CALLS_H_
