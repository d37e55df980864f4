// File: net/async_fd.h
//
// AsyncFd is a descriptor registered with an EventLoop: the readiness
// primitive that conet's sockets (net/, ipc/) are built from. It owns the
// descriptor, registers it with the loop (it joins the epoll set, once,
// edge-triggered, both directions, when an operation first has to wait) and
// offers one waiting reader and one waiting writer at a time (full duplex).
//
// Perform() runs a non-blocking syscall optimistically and suspends only on
// EAGAIN, retrying when the descriptor becomes ready:
//
//   absl::StatusOr<conet::AsyncFd> fd = conet::AsyncFd::Create(std::move(raw));
//   auto read_some = [&] { return ::read(fd->fd(), buf, sizeof(buf)); };
//   absl::StatusOr<size_t> n =
//       co_await fd->Perform(conet::Direction::kRead, "read", read_some);
//
// Readable()/Writable() await readiness alone; call them only after an
// operation returned EAGAIN (edge-triggered: an earlier edge is not stored).
#ifndef CONET_NET_ASYNC_FD_H_
#define CONET_NET_ASYNC_FD_H_

#include <sys/types.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/perform.h"
#include "net/unique_fd.h"

namespace conet {

enum class Direction { kRead, kWrite };

// A system call that AsyncFd::Perform runs, as a callable object. The
// contract:
//   - operator() makes non-blocking system calls only, and returns a count
//     (>= 0), or -1 with errno set. EINTR is retried at once; EAGAIN (or
//     EWOULDBLOCK) waits for the descriptor's next readiness edge and calls
//     it again; any other errno ends the operation with that error.
//   - It may be called more than once. One that loops (write everything, read
//     exactly N bytes) keeps its progress in members, so that a call after a
//     wait goes on where the last one stopped.
//   - Optionally it names itself, `static constexpr const char* kWhat =
//     "sendfile";`, so that Perform needs no name (errors read "sendfile on
//     fd 7: ..."), and it may have a member `Finish(absl::StatusOr<size_t>)`
//     whose result is what co_await yields instead of the count.
//   - It, and the memory it points to, stay valid until co_await completes.
template <typename Syscall>
concept NonBlockingSyscall = std::move_constructible<Syscall> && requires(Syscall& syscall) {
  { syscall() } -> std::convertible_to<ssize_t>;
};

class AsyncFd {
 public:
  // Registers `fd` (which must be non-blocking) with `loop`, or with the
  // loop running on this thread when `loop` is null.
  static absl::StatusOr<AsyncFd> Create(UniqueFd fd, EventLoop* loop = nullptr);

  AsyncFd() = default;
  AsyncFd(AsyncFd&& other) noexcept;
  AsyncFd& operator=(AsyncFd&& other) noexcept;
  // Unregisters and closes; pending operations complete with CancelledError.
  ~AsyncFd() { Close(); }

  // Returns the descriptor (-1 if none), keeping ownership.
  [[nodiscard]] int fd() const noexcept { return fd_.fd(); }
  [[nodiscard]] bool is_open() const noexcept { return fd_.is_open(); }
  [[nodiscard]] EventLoop* loop() const noexcept { return loop_; }
  // Unregisters and closes the descriptor.
  void Close() noexcept;
  // Unregisters the descriptor and hands it back, still open.
  [[nodiscard]] UniqueFd Release() noexcept;
  // Declares that a read returning fewer bytes than asked has emptied the
  // descriptor (true of TCP sockets; of UNIX streams only when the read cut
  // no control message, since their reads stop at a message carrying
  // descriptors or credentials). conet's own stream reads then wait for the
  // next readiness edge after a short read instead of trying first and
  // failing with EAGAIN: one system call less per message for a
  // request/response server. Other syscalls are always tried first.
  void SetShortReadDrains() noexcept {
    if (loop_ == nullptr) return;
    internal::LoopAccess::SetShortReadDrains(*loop_, fd_.fd(), generation_);
    short_read_drains_ = true;
  }

  template <typename Syscall>
  using PerformAwaiter = internal::PerformAwaiter<Syscall>;
  using ReadinessAwaiter = internal::ReadinessAwaiter;

  // Runs `syscall` (see NonBlockingSyscall) now, and again each time the
  // descriptor is ready while it fails with EAGAIN. co_await yields the
  // count, or the errno as a status naming `what` and the descriptor (or
  // what the syscall's Finish makes of them). At most one pending operation
  // per direction.
  template <NonBlockingSyscall Syscall>
  PerformAwaiter<Syscall> Perform(Direction direction, const char* what, Syscall syscall,
                                  const Cancellation& cancel = kNoCancellation) {
    return PerformAwaiter<Syscall>(Target(direction), what, std::move(syscall), cancel);
  }
  // The same for a syscall that names itself (kWhat): the awaiter then keeps
  // no name of its own (8 bytes less in every frame that awaits it).
  template <NonBlockingSyscall Syscall>
  requires internal::SyscallNamesItself<Syscall> PerformAwaiter<Syscall> Perform(
      Direction direction, Syscall syscall, const Cancellation& cancel = kNoCancellation) {
    return PerformAwaiter<Syscall>(Target(direction), Syscall::kWhat, std::move(syscall), cancel);
  }
  // Awaits readability (co_await yields OK, or why the wait ended early).
  // Call it only after an operation failed with EAGAIN: the descriptor is
  // edge-triggered and an earlier edge is not stored.
  ReadinessAwaiter Readable(const Cancellation& cancel = kNoCancellation) {
    return ReadinessAwaiter(Target(Direction::kRead), cancel);
  }
  // Awaits writability (same rule).
  ReadinessAwaiter Writable(const Cancellation& cancel = kNoCancellation) {
    return ReadinessAwaiter(Target(Direction::kWrite), cancel);
  }

 private:
  AsyncFd(UniqueFd fd, EventLoop* loop, uint32_t generation)
      : fd_(std::move(fd)), loop_(loop), generation_(generation) {}
  internal::WaitTarget Target(Direction direction) const {
    return {loop_, fd_.fd(), generation_, direction == Direction::kWrite, short_read_drains_};
  }

  UniqueFd fd_;
  EventLoop* loop_ = nullptr;
  uint32_t generation_ = 0;
  // A copy of the loop's flag, for awaiters; set only while registered.
  bool short_read_drains_ = false;
};

}  // namespace conet

#endif  // CONET_NET_ASYNC_FD_H_
