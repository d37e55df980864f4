#include "net/internal/stream_calls.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "net/sockets/socket_ops.h"

namespace conet::internal {

ssize_t ReadCall::ReadUnix() {
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  const ssize_t n = ::recvmsg(fd, &msg, 0);
  control_cut = n >= 0 && (msg.msg_flags & MSG_CTRUNC) != 0;
  return n;
}

namespace {

// Closes the descriptors an SCM_RIGHTS control message carries.
void CloseReceived(const cmsghdr* c) {
  sockets::ForEachPassedFd(c, [](int fd) { ::close(fd); });
}

}  // namespace

ssize_t ReadExactCall::ReadNotingInq() {
  // Room for exactly one control message with one int: the "bytes left"
  // report, or (UNIX) a message's single descriptor instead. Words rather
  // than a char array, which would cost a stack canary per call.
  uint64_t control[CMSG_SPACE(sizeof(int)) / sizeof(uint64_t)];
  static_assert(sizeof(control) == CMSG_SPACE(sizeof(int)));
  iovec iov{data + done, size - done};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  drained = false;
  if (n <= 0) return n;
  const cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr) return n;
  if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    // A stream read wants bytes only: close what came, as read() would
    // have. The read stopped there, so it says nothing about what is left.
    CloseReceived(c);
    return n;
  }
  // A cut control message: the read stopped at descriptors or credentials.
  if (msg.msg_flags & MSG_CTRUNC) return n;
  const int type = inq_level == IPPROTO_TCP ? TCP_CM_INQ : kScmInq;
  if (c->cmsg_level == inq_level && c->cmsg_type == type) {
    int left;
    std::memcpy(&left, CMSG_DATA(c), sizeof(left));
    drained = left == 0;
  }
  return n;
}

absl::Status ReadExactCall::EndedEarly(size_t got) const {
  return absl::OutOfRangeError(
      absl::StrCat("read on fd ", fd, ": end of stream after ", got, " of ", size, " bytes"));
}

namespace {

// Keeps a write to a closed socket from raising SIGPIPE in a call that
// cannot say MSG_NOSIGNAL: blocks SIGPIPE in this thread for the guard's
// life and, if the call failed with EPIPE and no SIGPIPE was pending
// before, takes the one it raised (it is directed at this thread) before
// restoring the mask.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
  }
  ~SigpipeGuard() {
    if (!blocked_) return;
    if (saw_epipe_ && !was_pending_) {
      const timespec now{};
      const int saved = errno;
      while (sigtimedwait(&pipe_, nullptr, &now) < 0 && errno == EINTR) {
      }
      errno = saved;
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void SawEpipe() { saw_epipe_ = true; }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool blocked_ = false;
  bool saw_epipe_ = false;
};

}  // namespace

ssize_t SendFileCall::operator()() {
  const int more = size > 0 ? MSG_MORE : 0;
  while (head_done < head_size) {
    const ssize_t n = ::send(fd, head + head_done, head_size - head_done, MSG_NOSIGNAL | more);
    if (n < 0) return -1;
    head_done += static_cast<size_t>(n);
  }
  if (size == 0) return 0;
  SigpipeGuard guard;
  do {
    const ssize_t n = ::sendfile(fd, file_fd, offset, size - done);
    if (n < 0) {
      if (errno == EPIPE) guard.SawEpipe();
      return -1;
    }
    if (n == 0) break;  // the file ended: Finish reports the shortfall
    done += static_cast<size_t>(n);
  } while (all && done < size);
  return static_cast<ssize_t>(done);
}

absl::Status SendFileCall::FileEnded() const {
  return absl::OutOfRangeError(absl::StrCat("sendfile from fd ", file_fd, " to fd ", fd,
                                            ": file ended at offset ", *offset, ", ", size - done,
                                            " of ", size, " bytes not sent"));
}

ssize_t ReadvCall::operator()() const { return ::readv(fd, buffers, static_cast<int>(count)); }

ssize_t SendmsgCall::operator()() const {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(buffers);
  msg.msg_iovlen = count;
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL);
}

ssize_t SendmsgAllCall::operator()() {
  while (first < pending.size()) {
    msghdr msg{};
    msg.msg_iov = pending.data() + first;
    msg.msg_iovlen = pending.size() - first;
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) return -1;
    total += static_cast<size_t>(n);
    // Drop what was sent: whole iovecs, then a prefix of the next one.
    auto left = static_cast<size_t>(n);
    while (first < pending.size() && left >= pending[first].iov_len) {
      left -= pending[first].iov_len;
      ++first;
    }
    if (left > 0) {
      pending[first].iov_base = static_cast<char*>(pending[first].iov_base) + left;
      pending[first].iov_len -= left;
    }
  }
  return static_cast<ssize_t>(total);
}

StreamKind StreamKindOf(int fd) {
  absl::StatusOr<int> domain = sockets::GetIntOption(fd, SOL_SOCKET, SO_DOMAIN, "SO_DOMAIN");
  absl::StatusOr<int> type = sockets::GetIntOption(fd, SOL_SOCKET, SO_TYPE, "SO_TYPE");
  if (!domain.ok() || !type.ok() || *type != SOCK_STREAM) return StreamKind::kOther;
  if (*domain == AF_UNIX) return StreamKind::kUnix;
  if (*domain != AF_INET && *domain != AF_INET6) return StreamKind::kOther;
  absl::StatusOr<int> protocol = sockets::GetIntOption(fd, SOL_SOCKET, SO_PROTOCOL, "SO_PROTOCOL");
  return protocol.ok() && *protocol == IPPROTO_TCP ? StreamKind::kTcp : StreamKind::kOther;
}

}  // namespace conet::internal
