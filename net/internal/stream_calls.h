// File: net/internal/stream_calls.h
//
// The system calls behind StreamSocket's reads and writes
// (net/stream_socket.h), as NonBlockingSyscall objects for AsyncFd::Perform.
// Not part of the application API.
#ifndef CONET_NET_INTERNAL_STREAM_CALLS_H_
#define CONET_NET_INTERNAL_STREAM_CALLS_H_

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace conet::internal {

// What a connected socket's reads can promise (see
// AsyncFd::SetShortReadDrains): a TCP stream's short read empties it, a UNIX
// stream's too unless a control message was cut; other sockets adopted as
// streams (SCTP, or a record socket) promise nothing.
enum class StreamKind : uint8_t { kOther, kTcp, kUnix };
// Finds the kind from SO_DOMAIN, SO_TYPE and SO_PROTOCOL (kOther if any
// fails: not a socket).
StreamKind StreamKindOf(int fd);
// SO_INQ / SCM_INQ for UNIX sockets (Linux 6.17), which libc's headers may
// not name yet.
inline constexpr int kSoInq = 84;
inline constexpr int kScmInq = kSoInq;

struct ReadCall {
  static constexpr const char* kWhat = "read";
  // A short read leaves nothing behind on a descriptor marked so (see
  // AsyncFd::SetShortReadDrains), unless `control_cut` says otherwise.
  static constexpr bool kShortReadDrains = true;
  int fd;
  bool unix_stream;  // read with recvmsg, to learn of a cut control message
  // Set when the read skipped a control message (descriptors or
  // credentials) it had no room for: a UNIX stream read stops short there,
  // with more data queued behind it. (Beside the other flag: no padding.)
  bool control_cut = false;
  char* data;
  size_t size;
  ssize_t operator()() {
    if (!unix_stream) return ::read(fd, data, size);
    return ReadUnix();
  }
  ssize_t ReadUnix();
};

struct ReadExactCall {
  static constexpr const char* kWhat = "read";
  int fd;
  // The level of the kernel's "bytes left" control message (IPPROTO_TCP
  // for TCP_INQ, SOL_SOCKET for SO_INQ), or 0 to read with plain read().
  int inq_level;
  char* data;
  size_t size;
  size_t done = 0;
  // Set when the last read left nothing queued (as the kernel reported).
  bool drained = false;
  ssize_t operator()() {
    while (done < size) {
      const ssize_t n = inq_level == 0 ? ::read(fd, data + done, size - done) : ReadNotingInq();
      if (n < 0) return -1;
      if (n == 0) break;  // end of stream: Finish reports the shortfall
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
  }
  absl::StatusOr<size_t> Finish(absl::StatusOr<size_t> result) const {
    if (!result.ok() || *result == size) return result;
    return EndedEarly(*result);
  }
  // OutOfRangeError: the stream ended after `got` bytes.
  absl::Status EndedEarly(size_t got) const;
  // One recvmsg into data[done, size) that also reads the "bytes left"
  // report and sets `drained`.
  ssize_t ReadNotingInq();
};

struct SendCall {
  static constexpr const char* kWhat = "send";
  int fd;
  const char* data;
  size_t size;
  ssize_t operator()() const { return ::send(fd, data, size, MSG_NOSIGNAL); }
};

struct SendAllCall {
  static constexpr const char* kWhat = "send";
  int fd;
  const char* data;
  size_t size;
  size_t done = 0;
  ssize_t operator()() {
    while (done < size) {
      const ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
      if (n < 0) return -1;
      done += static_cast<size_t>(n);
    }
    return static_cast<ssize_t>(done);
  }
};

// sendfile(2) from a file at `*offset`, which advances with what is sent:
// after an error or a cancellation it says how far the transfer got.
struct SendFileCall {
  static constexpr const char* kWhat = "sendfile";
  int fd;
  int file_fd;
  off_t* offset;
  size_t size;
  bool all;  // keep going until `size` bytes are sent (or the file ends)
  // Bytes sent before the file's (a response head), with MSG_MORE when a
  // body follows so that they leave in its first segment.
  const char* head = nullptr;
  size_t head_size = 0;
  size_t head_done = 0;
  size_t done = 0;
  // sendfile(2) has no MSG_NOSIGNAL: SIGPIPE is blocked around it, and one
  // it raised is taken before it is unblocked (see SigpipeGuard).
  ssize_t operator()();
  absl::StatusOr<size_t> Finish(absl::StatusOr<size_t> result) const {
    if (!result.ok() || !all || *result == size) return result;
    return FileEnded();
  }
  // OutOfRangeError: the file ended at `*offset`, short of `size`.
  absl::Status FileEnded() const;
};

struct ReadvCall {
  int fd;
  const iovec* buffers;
  size_t count;
  ssize_t operator()() const;
};

struct SendmsgCall {
  int fd;
  const iovec* buffers;
  size_t count;
  ssize_t operator()() const;
};

struct SendmsgAllCall {
  int fd;
  std::vector<iovec> pending;  // what is left to send, advanced in place
  size_t first = 0;            // index of the first unsent iovec
  size_t total = 0;
  ssize_t operator()();
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_STREAM_CALLS_H_
