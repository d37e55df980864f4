// File: net/signals.h
//
// POSIX signals as something a coroutine awaits. A SignalWatcher reads a
// set of signals through a signalfd registered with an EventLoop; the
// signals must be blocked (in every thread, so block them in main() before
// starting any) so that they wait, pending, for the signalfd instead of
// being delivered:
//
//   sigset_t signals;
//   sigemptyset(&signals);
//   sigaddset(&signals, SIGHUP);
//   pthread_sigmask(SIG_BLOCK, &signals, nullptr);
//   ...
//   absl::StatusOr<conet::SignalWatcher> watcher = conet::SignalWatcher::Create(signals);
//   while (true) {
//     absl::StatusOr<int> signal = co_await watcher->Next();
//     if (!signal.ok()) break;
//     ReloadConfig();  // *signal == SIGHUP
//   }
//
// How a server stops: SIGINT or SIGTERM (conet's programs then exit 0).
// main() blocks both with BlockStopSignals() before starting any thread; a
// server then runs until one arrives:
//
//   const sigset_t stop = conet::BlockStopSignals();
//   ... create the LoopGroup, bind, SpawnOnEach ...
//   conet::ServeUntilStopSignal(*group, bound_address, stop);
//   return 0;
//
// A single-loop program races its work against WaitForStopSignal() instead.
#ifndef CONET_NET_SIGNALS_H_
#define CONET_NET_SIGNALS_H_

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/async_fd.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/loop_group.h"
#include "net/task.h"

namespace conet {

namespace internal {
struct ReadSignalCall;
}  // namespace internal

class SignalWatcher {
 public:
  using NextAwaiter = AsyncFd::PerformAwaiter<internal::ReadSignalCall>;

  // Opens a signalfd for `signals` and registers it with `loop` (null: the
  // loop running on this thread). Fails with InvalidArgumentError for an
  // empty set, and with FailedPreconditionError if one of the signals is
  // not blocked in the calling thread (it would be delivered, never read).
  static absl::StatusOr<SignalWatcher> Create(const sigset_t& signals, EventLoop* loop = nullptr);

  SignalWatcher() = default;
  SignalWatcher(SignalWatcher&&) noexcept = default;
  SignalWatcher& operator=(SignalWatcher&&) noexcept = default;
  // Unregisters and closes the signalfd (a pending Next ends with
  // CancelledError); signals that arrive later stay pending.
  ~SignalWatcher() = default;

  // Returns the signalfd (-1 if none), keeping ownership.
  [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
  // Unregisters and closes the signalfd.
  void Close() noexcept { fd_.Close(); }

  // Waits for the next signal of the set, taking it from the pending ones
  // (the lowest-numbered first when several are). co_await yields its
  // number, or the error naming the descriptor ("read signalfd on fd 7:
  // ..."). A signal that arrived before the call is taken at once; a
  // standard signal sent again while pending is counted once, as the
  // kernel does. Process-directed signals (kill, a terminal's ^C) are seen
  // by any watcher of the process, thread-directed ones (tgkill, raise,
  // pthread_kill) only by a watcher on the thread they were sent to.
  //
  // At most one Next may be pending per watcher. Cancellation (or the
  // task's stop token) ends the wait with CancelledError, or
  // DeadlineExceededError for the deadline; no signal is taken then.
  NextAwaiter Next(const Cancellation& cancel = kNoCancellation);

 private:
  explicit SignalWatcher(AsyncFd fd) : fd_(std::move(fd)) {}

  AsyncFd fd_;
};

// Returns {SIGINT, SIGTERM}.
sigset_t StopSignals();

// Blocks the stop signals in the calling thread (threads started later
// inherit the mask) and returns them.
sigset_t BlockStopSignals();

// Blocks the calling thread (which runs no loop) until one of `signals`
// (blocked by the caller) arrives and returns its number: main()'s wait for
// a stop, through a SignalWatcher on a small loop of the thread's own.
// Should the watcher fail (no descriptor left), it waits with sigwait.
int BlockUntilSignal(const sigset_t& signals);

// Starts `group`, prints `listening on ADDRESS` (flushed), waits for one of
// `signals` (BlockUntilSignal), then stops the loops and joins their threads.
void ServeUntilStopSignal(LoopGroup& group, const std::string& address, const sigset_t& signals);

// Waits on the current loop, through a SignalWatcher, until SIGINT or
// SIGTERM (blocked with BlockStopSignals) arrives: for single-loop programs
// that race their work against a stop request with WhenAny. co_await
// yields OK when a signal came, or why the wait failed (or was cancelled).
Task<absl::Status> WaitForStopSignal();

// Implementation details follow.

namespace internal {

// Reads one signalfd_siginfo; Perform yields the signal's number.
struct ReadSignalCall {
  static constexpr const char* kWhat = "read signalfd";
  int fd;
  signalfd_siginfo info;

  ssize_t operator()() noexcept { return ::read(fd, &info, sizeof(info)); }
  absl::StatusOr<int> Finish(absl::StatusOr<size_t> result) const;
};

}  // namespace internal
}  // namespace conet

#endif  // CONET_NET_SIGNALS_H_
