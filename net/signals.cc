#include "net/signals.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/status/statusor.h"
#include "net/async_fd.h"
#include "net/unique_fd.h"

namespace conet {

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

sigset_t BlockStopSignals() {
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

void ServeUntilStopSignal(LoopGroup& group, const std::string& address, const sigset_t& signals) {
  group.Start();
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  group.Stop();
  group.Join();
}

Task<absl::Status> WaitForStopSignal() {
  const sigset_t signals = StopSignals();
  UniqueFd raw(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!raw.is_open()) co_return absl::ErrnoToStatus(errno, "signalfd");
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(raw));
  if (!fd.ok()) co_return fd.status();
  signalfd_siginfo info;
  // Named: GCC 12 destroys a lambda temporary in a co_await twice.
  auto read_signal = [&fd, &info] { return ::read(fd->fd(), &info, sizeof(info)); };
  while (true) {
    absl::StatusOr<size_t> n = co_await fd->Perform(Direction::kRead, "read signalfd", read_signal);
    if (!n.ok()) co_return n.status();
    if (*n == sizeof(info)) co_return absl::OkStatus();
  }
}

}  // namespace conet
