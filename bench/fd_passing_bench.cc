// Descriptor passing over a SOCK_SEQPACKET socketpair: conet's SendFds /
// ReceiveFds against a plain blocking sendmsg/recvmsg loop, 1 and 16
// descriptors per message, in one run.
//
//   ./tools/bazel run -c opt //bench:fd_passing_bench
//
// items_per_second counts descriptors passed (sent, received and closed).
// Each message carries one data byte; the descriptors are copies of one
// pipe end, so the kernel does the same work for both loops.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "ipc/unix_socket.h"
#include "net/event_loop.h"
#include "net/task.h"

namespace {

// Returns `count` copies of one pipe's read end (the caller closes them).
std::vector<int> Descriptors(int count) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) std::abort();
  ::close(p[1]);
  std::vector<int> fds(static_cast<size_t>(count), p[0]);
  return fds;
}

void PlainSendmsgRecvmsg(benchmark::State& state) {
  const int count = static_cast<int>(state.range(0));
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) std::abort();
  const std::vector<int> fds = Descriptors(count);
  const size_t payload = fds.size() * sizeof(int);
  alignas(cmsghdr) char out_control[CMSG_SPACE(16 * sizeof(int))];
  alignas(cmsghdr) char in_control[CMSG_SPACE(16 * sizeof(int))];
  char byte = 'x';
  for (auto _ : state) {
    iovec iov{&byte, 1};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = out_control;
    msg.msg_controllen = CMSG_SPACE(payload);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(payload);
    std::memcpy(CMSG_DATA(cmsg), fds.data(), payload);
    if (::sendmsg(pair[0], &msg, MSG_NOSIGNAL) != 1) std::abort();
    msghdr in{};
    char got;
    iovec in_iov{&got, 1};
    in.msg_iov = &in_iov;
    in.msg_iovlen = 1;
    in.msg_control = in_control;
    in.msg_controllen = CMSG_SPACE(payload);
    if (::recvmsg(pair[1], &in, MSG_CMSG_CLOEXEC) != 1) std::abort();
    const cmsghdr* c = CMSG_FIRSTHDR(&in);
    const int received = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < received; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      ::close(fd);
    }
  }
  state.SetItemsProcessed(state.iterations() * count);
  ::close(fds[0]);
  ::close(pair[0]);
  ::close(pair[1]);
}

conet::Task<void> ConetLoop(benchmark::State* state, int count) {
  auto pair = conet::ipc::SocketPair(conet::ipc::SocketType::kSeqPacket);
  if (!pair.ok()) std::abort();
  const std::vector<int> fds = Descriptors(count);
  const std::string byte = "x";
  char got[1];
  for (auto _ : *state) {
    absl::StatusOr<size_t> sent = co_await pair->first.SendFds(byte, fds);
    absl::StatusOr<conet::ipc::ReceivedMessage> message =
        co_await pair->second.ReceiveFds(got, static_cast<size_t>(count));
    if (!sent.ok() || !message.ok()) std::abort();
  }  // each message's descriptors close as it goes out of scope
  state->SetItemsProcessed(state->iterations() * count);
  ::close(fds[0]);
}

void ConetSendFdsReceiveFds(benchmark::State& state) {
  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) std::abort();
  (*loop)->BlockOn(ConetLoop(&state, static_cast<int>(state.range(0))));
}

BENCHMARK(PlainSendmsgRecvmsg)->Arg(1)->Arg(16);
BENCHMARK(ConetSendFdsReceiveFds)->Arg(1)->Arg(16);

}  // namespace

BENCHMARK_MAIN();
