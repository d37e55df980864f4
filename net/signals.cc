#include "net/signals.h"

#include <pthread.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "net/unique_fd.h"

namespace conet {
namespace {

// Returns "2 (SIGINT)", or "34" for a signal without a name.
std::string SignalName(int signal) {
  const char* abbreviation = sigabbrev_np(signal);
  if (abbreviation == nullptr) return absl::StrCat(signal);
  return absl::StrCat(signal, " (SIG", abbreviation, ")");
}

// Returns FailedPreconditionError naming the first of `signals` that the
// calling thread does not block.
absl::Status CheckBlocked(const sigset_t& signals) {
  sigset_t blocked;
  if (int error = pthread_sigmask(SIG_BLOCK, nullptr, &blocked); error != 0) {
    return absl::ErrnoToStatus(error, "SignalWatcher: pthread_sigmask");
  }
  for (int signal = 1; signal < NSIG; ++signal) {
    if (sigismember(&signals, signal) == 1 && sigismember(&blocked, signal) != 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("SignalWatcher: signal ", SignalName(signal),
                       " is not blocked in this thread: it would be delivered, not read"));
    }
  }
  return absl::OkStatus();
}

Task<absl::StatusOr<int>> NextSignal(SignalWatcher* watcher) { co_return co_await watcher->Next(); }

// Waits for one of `signals` on a loop of this thread's own.
absl::StatusOr<int> WatchOnce(const sigset_t& signals) {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) return loop.status();
  absl::StatusOr<SignalWatcher> watcher = SignalWatcher::Create(signals, loop->get());
  if (!watcher.ok()) return watcher.status();
  return (*loop)->BlockOn(NextSignal(&*watcher));
}

}  // namespace

absl::StatusOr<SignalWatcher> SignalWatcher::Create(const sigset_t& signals, EventLoop* loop) {
  if (sigisemptyset(&signals)) {
    return absl::InvalidArgumentError("SignalWatcher: the set of signals is empty");
  }
  absl::StatusOr<EventLoop*> target = internal::LoopOrCurrent(loop, "SignalWatcher");
  if (!target.ok()) return target.status();
  if (absl::Status blocked = CheckBlocked(signals); !blocked.ok()) return blocked;
  UniqueFd raw(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!raw.is_open()) return absl::ErrnoToStatus(errno, "SignalWatcher: signalfd");
  absl::StatusOr<AsyncFd> fd = AsyncFd::Create(std::move(raw), *target);
  if (!fd.ok()) return fd.status();
  return SignalWatcher(*std::move(fd));
}

SignalWatcher::NextAwaiter SignalWatcher::Next(const Cancellation& cancel) {
  return fd_.Perform(Direction::kRead, internal::ReadSignalCall{fd_.fd(), {}}, cancel);
}

namespace internal {

absl::StatusOr<int> ReadSignalCall::Finish(absl::StatusOr<size_t> result) const {
  if (!result.ok()) return result.status();
  if (*result != sizeof(info)) {
    return absl::InternalError(absl::StrCat("read signalfd on fd ", fd, ": ", *result,
                                            " bytes, not one signalfd_siginfo"));
  }
  return static_cast<int>(info.ssi_signo);
}

}  // namespace internal

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

int BlockUntilSignal(const sigset_t& signals) {
  absl::StatusOr<int> watched = WatchOnce(signals);
  if (watched.ok()) return *watched;
  int signal = 0;
  while (sigwait(&signals, &signal) != 0) {
  }
  return signal;
}

void ServeUntilStopSignal(LoopGroup& group, const std::string& address, const sigset_t& signals) {
  group.Start();
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  BlockUntilSignal(signals);
  group.Stop();
  group.Join();
}

Task<absl::Status> WaitForStopSignal() {
  absl::StatusOr<SignalWatcher> watcher = SignalWatcher::Create(StopSignals());
  if (!watcher.ok()) co_return watcher.status();
  absl::StatusOr<int> signal = co_await watcher->Next();
  co_return signal.status();
}

}  // namespace conet
