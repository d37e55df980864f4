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

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/operation.h"
#include "net/unique_fd.h"

namespace conet {

enum class Direction { kRead, kWrite };

class AsyncFd {
 public:
  // Registers `fd` (which must be non-blocking) with `loop`, or with the loop
  // running on this thread.
  static absl::StatusOr<AsyncFd> Create(UniqueFd fd, EventLoop& loop);
  static absl::StatusOr<AsyncFd> Create(UniqueFd fd);

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
  // descriptors or credentials: StreamSocket reads them with recvmsg to know).
  // A read syscall that says so (kShortReadDrains) then waits for the next
  // readiness edge after a short read instead of trying first and failing
  // with EAGAIN: one system call less per message for a request/response
  // server.
  void SetShortReadDrains() noexcept {
    if (loop_ == nullptr) return;
    internal::LoopAccess::SetShortReadDrains(*loop_, fd_.fd(), generation_);
    short_read_drains_ = true;
  }

  template <typename Syscall>
  class PerformAwaiter;
  class ReadinessAwaiter;

  // Runs `syscall` (returning a count >= 0, or -1 with errno) now, and again
  // each time the descriptor is ready while it fails with EAGAIN.
  // co_await yields the count, or the errno as a status naming `what` and
  // the descriptor; if `syscall` has a member Finish(absl::StatusOr<size_t>),
  // co_await yields what Finish returns instead. A read that declares
  // `static constexpr bool kShortReadDrains = true` and a `size` member (the
  // bytes asked for) takes part in the read hint (see SetShortReadDrains);
  // one with a `control_cut` member can veto it for a given read. `syscall` and what it
  // refers to must stay valid until the co_await completes. At most one
  // pending operation per direction.
  template <typename Syscall>
  PerformAwaiter<Syscall> Perform(Direction direction, const char* what, Syscall syscall,
                                  const Cancellation& cancel = kNoCancellation) {
    return PerformAwaiter<Syscall>(this, direction, what, std::move(syscall), cancel);
  }
  // The same for a syscall type that names itself with a static member
  // `static constexpr const char* kWhat`: the awaiter then keeps no name of
  // its own (8 bytes less in every frame that awaits it).
  template <typename Syscall>
  requires requires { Syscall::kWhat; }
  PerformAwaiter<Syscall> Perform(Direction direction, Syscall syscall,
                                  const Cancellation& cancel = kNoCancellation) {
    return PerformAwaiter<Syscall>(this, direction, Syscall::kWhat, std::move(syscall), cancel);
  }
  // Awaits readability (co_await yields OK, or why the wait ended early).
  ReadinessAwaiter Readable(const Cancellation& cancel = kNoCancellation);
  // Awaits writability.
  ReadinessAwaiter Writable(const Cancellation& cancel = kNoCancellation);

 private:
  class SlotAwaiter;
  AsyncFd(UniqueFd fd, EventLoop* loop, uint32_t generation)
      : fd_(std::move(fd)), loop_(loop), generation_(generation) {}

  UniqueFd fd_;
  EventLoop* loop_ = nullptr;
  uint32_t generation_ = 0;
  // A copy of the loop's flag, for awaiters; set only while registered.
  bool short_read_drains_ = false;
};

// Implementation details follow.

// An operation waiting in one direction's slot of an AsyncFd: shared by the
// awaiters above. It copies what it needs, so the AsyncFd may move meanwhile.
class AsyncFd::SlotAwaiter : public internal::IoOperation {
 public:
  // Takes the slot and suspends; fails if the fd is closed or another
  // operation waits there.
  bool await_suspend(std::coroutine_handle<> handle) noexcept {
    internal::IoOperation** slot =
        loop() != nullptr ? internal::LoopAccess::WaitSlot(*loop(), fd_, generation_, for_write_)
                          : nullptr;
    if (slot == nullptr || *slot != nullptr) [[unlikely]] {
      slot = PrepareSlot();
      if (slot == nullptr) return false;
    }
    *slot = this;
    Suspend(*loop(), handle);
    return true;
  }

 protected:
  SlotAwaiter(AsyncFd* fd, Direction direction, const Cancellation& cancel)
      : IoOperation(cancel, fd->loop_),
        fd_(fd->fd()),
        generation_(fd->generation_),
        for_write_(direction == Direction::kWrite),
        short_read_drains_(fd->short_read_drains_) {}
  SlotAwaiter(SlotAwaiter&&) = default;
  ~SlotAwaiter() = default;
  int fd() const { return fd_; }
  // Read hints (see SetShortReadDrains); free for descriptors without them.
  bool KnownDrained() const {
    return short_read_drains_ && internal::LoopAccess::KnownDrained(*loop(), fd_, generation_);
  }
  void NoteShortRead() {
    if (short_read_drains_) internal::LoopAccess::NoteShortRead(*loop(), fd_, generation_);
  }
  // The error an operation ends with: its early-completion status, or else
  // the errno in `result` (negated) naming `what` and the fd. Kept out of
  // line so that the success path needs no stack frame.
  absl::Status Failure(ssize_t result, const char* what);

 private:
  // The slow path of await_suspend: adds the descriptor to the epoll set on
  // its first wait and returns the free slot, or sets status() to why there
  // is none (epoll refused, the fd is closed, another operation waits).
  internal::IoOperation** PrepareSlot();
  void Unlink() noexcept override;

  int fd_;
  uint32_t generation_;
  bool for_write_;
  bool short_read_drains_;
};

template <typename Syscall>
class AsyncFd::PerformAwaiter final : public AsyncFd::SlotAwaiter {
 public:
  PerformAwaiter(AsyncFd* fd, Direction direction, const char* what, Syscall syscall,
                 const Cancellation& cancel)
      : SlotAwaiter(fd, direction, cancel), syscall_(std::move(syscall)) {
    if constexpr (!kNamed) what_ = what;
  }
  PerformAwaiter(PerformAwaiter&&) = default;
  ~PerformAwaiter() { Abandon(); }

  bool await_ready() noexcept {
    if (absl::Status stop = StopStatus(); !stop.ok()) {
      status() = std::move(stop);
      return true;
    }
    // Known to fail with EAGAIN: suspend (await_suspend) without trying.
    if constexpr (kUsesReadHint) {
      // An empty buffer completes at once (with 0) whatever is queued.
      if (syscall_.size != 0 && KnownDrained()) return false;
    }
    return Attempt();
  }
  // Yields the count or error; a Syscall with a Finish(StatusOr<size_t>)
  // member turns that into its own result (e.g. a datagram's source address).
  decltype(auto) await_resume() {
    if constexpr (requires { syscall_.Finish(Result()); }) {
      return syscall_.Finish(Result());
    } else {
      return Result();
    }
  }
  bool Attempt() noexcept override {
    while (true) {
      result_ = syscall_();
      if (result_ >= 0) {
        if constexpr (kShortReadDrains) {
          if (result_ > 0 && static_cast<size_t>(result_) < syscall_.size && !ControlCut()) {
            NoteShortRead();
          }
        }
        if constexpr (kReportsDrained) {
          if (syscall_.drained) NoteShortRead();
        }
        return true;
      }
      const int error = errno;
      if (error == EINTR) continue;
      result_ = -error;
      return error != EAGAIN && error != EWOULDBLOCK;
    }
  }

 private:
  absl::StatusOr<size_t> Result() {
    if (status().ok() && result_ >= 0) [[likely]]
      return static_cast<size_t>(result_);
    if constexpr (kNamed) {
      return Failure(result_, Syscall::kWhat);
    } else {
      return Failure(result_, what_);
    }
  }

  // Whether the read stopped at a control message it had no room for (a
  // syscall that can tell has a `control_cut` member).
  bool ControlCut() const {
    if constexpr (requires { syscall_.control_cut; }) {
      return syscall_.control_cut;
    } else {
      return false;
    }
  }

  static constexpr bool kNamed = requires { Syscall::kWhat; };
  // A read into `size` bytes whose short result may mean "drained".
  static constexpr bool kShortReadDrains = requires { requires Syscall::kShortReadDrains; };
  // A read that can tell it emptied the queue (the kernel's "bytes left").
  static constexpr bool kReportsDrained = requires(Syscall & call) { call.drained; };
  static constexpr bool kUsesReadHint = kShortReadDrains || kReportsDrained;
  struct NoName {};
  [[no_unique_address]] std::conditional_t<kNamed, NoName, const char*> what_{};
  Syscall syscall_;
  ssize_t result_ = -1;  // the count, or minus the errno
};

class AsyncFd::ReadinessAwaiter final : public AsyncFd::SlotAwaiter {
 public:
  ReadinessAwaiter(AsyncFd* fd, Direction direction, const Cancellation& cancel)
      : SlotAwaiter(fd, direction, cancel) {}
  ReadinessAwaiter(ReadinessAwaiter&&) = default;
  ~ReadinessAwaiter() { Abandon(); }

  bool await_ready() noexcept {
    status() = StopStatus();
    return !status().ok();
  }
  absl::Status await_resume() { return std::move(status()); }
  bool Attempt() noexcept override { return true; }
};

}  // namespace conet

#endif  // CONET_NET_ASYNC_FD_H_
