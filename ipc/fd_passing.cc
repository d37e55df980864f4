#include "ipc/fd_passing.h"

#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/sockets/socket_ops.h"

namespace conet::ipc {
namespace {

// Room for the sender's credentials (SO_PASSCRED) and the largest
// SCM_RIGHTS message, on the stack of each receive.
constexpr size_t kCredentialsBytes = CMSG_SPACE(sizeof(ucred));
constexpr size_t kMaxControlBytes = kCredentialsBytes + CMSG_SPACE(kMaxFdsPerMessage * sizeof(int));

}  // namespace

absl::Status CheckSendFds(size_t bytes, size_t fds) {
  if (fds > kMaxFdsPerMessage) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot send ", fds, " descriptors in one message: the kernel takes at most ",
                     kMaxFdsPerMessage));
  }
  if (fds > 0 && bytes == 0) {
    return absl::InvalidArgumentError(
        "descriptors must travel with at least one data byte (alone they are "
        "lost on a stream, and look like end of stream on seqpacket)");
  }
  return absl::OkStatus();
}

namespace internal {

ssize_t AttachFdsCall::operator()() {
  if (!invalid.ok()) {
    errno = EINVAL;
    return -1;
  }
  alignas(cmsghdr) char control[kMaxControlBytes];
  while (true) {
    iovec iov{const_cast<char*>(data) + done, size - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (to.has_value()) {
      msg.msg_name = const_cast<sockaddr*>(to->data());
      msg.msg_namelen = to->size();
    }
    if (!fds_sent && !fds.empty()) {
      const size_t payload = fds.size() * sizeof(int);
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(payload);
      std::memset(control, 0, msg.msg_controllen);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(payload);
      std::memcpy(CMSG_DATA(cmsg), fds.data(), payload);
    }
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      too_many_in_flight = errno == ETOOMANYREFS;
      return -1;
    }
    fds_sent = true;  // they went with the first byte; never again
    done += static_cast<size_t>(n);
    if (!whole || done == size) return static_cast<ssize_t>(done);
  }
}

absl::StatusOr<size_t> AttachFdsCall::Finish(absl::StatusOr<size_t> result) const {
  if (!invalid.ok()) return invalid;
  if (!result.ok() && too_many_in_flight) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "sendmsg of ", fds.size(), " descriptors on fd ", fd,
        ": too many descriptors in flight for this user (sent and not yet received; the kernel's "
        "limit is the sender's RLIMIT_NOFILE); nothing was sent"));
  }
  return result;
}

ssize_t DetachFdsCall::operator()() {
  alignas(cmsghdr) char control[kMaxControlBytes];
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (want_sender) {
    msg.msg_name = &from;
    msg.msg_namelen = sizeof(from);
  }
  // Always room for credentials: with SO_PASSCRED every message carries
  // them, and without the room the kernel would truncate the control data.
  msg.msg_control = control;
  msg.msg_controllen = kCredentialsBytes;
  if (max_fds > 0) {
    msg.msg_controllen += CMSG_SPACE(std::min(max_fds, kMaxFdsPerMessage) * sizeof(int));
  }
  const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) return -1;
  // Own every descriptor the kernel installed before looking at anything
  // else, so that each error path below closes them.
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level != SOL_SOCKET) continue;
    if (cmsg->cmsg_type == SCM_RIGHTS) {
      sockets::ForEachPassedFd(cmsg, [this](int received) { fds.emplace_back(received); });
    } else if (cmsg->cmsg_type == SCM_CREDENTIALS && cmsg->cmsg_len >= CMSG_LEN(sizeof(ucred))) {
      ucred sender;
      std::memcpy(&sender, CMSG_DATA(cmsg), sizeof sender);
      credentials = sender;
    }
  }
  msg_flags = msg.msg_flags;
  from_len = msg.msg_namelen;
  return n;
}

absl::StatusOr<ReceivedMessage> DetachFdsCall::Finish(absl::StatusOr<size_t> result) {
  if (!result.ok()) return result.status();
  const size_t arrived = fds.size();
  auto where = [this] { return absl::StrCat("recvmsg on fd ", fd); };
  if ((msg_flags & MSG_CTRUNC) != 0 || arrived > max_fds) {
    fds.clear();  // closes them
    return absl::ResourceExhaustedError(
        absl::StrCat(where(), ": the peer sent more descriptors than the ", max_fds,
                     " this receive takes (or the process ran out of descriptors); the ", arrived,
                     " that arrived were closed, with ", *result, " data bytes"));
  }
  if (message_based && (msg_flags & MSG_TRUNC) != 0) {
    fds.clear();
    return absl::OutOfRangeError(absl::StrCat(where(), ": the message was longer than the ", size,
                                              "-byte buffer; its tail and ", arrived,
                                              " descriptors were discarded"));
  }
  ReceivedMessage message;
  message.size = *result;
  message.fds = std::move(fds);
  if (credentials.has_value()) {
    message.credentials = Credentials{credentials->pid, credentials->uid, credentials->gid};
  }
  // A named datagram sender; an unnamed one (or a connected socket) has no
  // address worth reporting.
  if (from_len > sizeof(sa_family_t)) {
    absl::StatusOr<SocketAddress> sender =
        SocketAddress::FromSockaddr(reinterpret_cast<const sockaddr*>(&from), from_len);
    if (sender.ok()) message.from = *sender;
  }
  return message;
}

}  // namespace internal

SendFdsAwaiter SendFds(StreamSocket& stream, ConstBytes bytes, std::span<const int> fds,
                       const Cancellation& cancel) {
  internal::AttachFdsCall call{stream.fd(),   bytes.data(), bytes.size(), fds, std::nullopt,
                               /*whole=*/true};
  // Refused before any syscall: the call then fails without one.
  call.invalid = CheckSendFds(bytes.size(), fds.size());
  if (call.invalid.ok() && !stream.is_unix()) {
    call.invalid = absl::FailedPreconditionError(
        absl::StrCat("send descriptors on fd ", stream.fd(),
                     ": not a UNIX stream (descriptors pass only over UNIX sockets)"));
  }
  return stream.Perform(Direction::kWrite, "sendmsg", std::move(call), cancel);
}

ReceiveFdsAwaiter ReceiveFds(StreamSocket& stream, std::span<char> buffer, size_t max_fds,
                             const Cancellation& cancel) {
  return stream.Perform(Direction::kRead, "recvmsg",
                        internal::DetachFdsCall{stream.fd(), buffer.data(), buffer.size(),
                                                std::min(max_fds, kMaxFdsPerMessage),
                                                /*message_based=*/false, /*want_sender=*/false},
                        cancel);
}

}  // namespace conet::ipc
