// File: net/internal/perform.h
//
// The awaiters behind AsyncFd::Perform, Readable and Writable (net/async_fd.h),
// and the read hints conet's own socket reads take part in. Not part of the
// application API: include net/async_fd.h.
#ifndef CONET_NET_INTERNAL_PERFORM_H_
#define CONET_NET_INTERNAL_PERFORM_H_

#include <sys/types.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/cancellation.h"
#include "net/event_loop.h"
#include "net/internal/operation.h"

namespace conet::internal {

// A syscall that names itself in errors: `static constexpr const char* kWhat`.
template <typename Syscall>
concept SyscallNamesItself = requires {
  { Syscall::kWhat } -> std::convertible_to<const char*>;
};

// A syscall that turns the raw count (or error) into what co_await yields:
// a member `Finish(absl::StatusOr<size_t>)` (e.g. a datagram and its sender).
template <typename Syscall>
concept SyscallFinishes = requires(Syscall& syscall, absl::StatusOr<size_t> result) {
  syscall.Finish(std::move(result));
};

// The read hints (AsyncFd::SetShortReadDrains). A read takes part by
// declaring one of these; every other syscall is tried first, always.
//
// ShortReadDrains: `static constexpr bool kShortReadDrains = true` and a
// `size` member (the bytes asked for). A count above 0 and below `size` is
// taken to mean the descriptor is empty, so the next hinted read waits for
// the next edge without trying. Only true where the kernel fills a read from
// everything queued: TCP, and UNIX streams when no control message stopped
// the read.
template <typename Syscall>
concept ShortReadDrains = requires(Syscall& syscall) {
  requires Syscall::kShortReadDrains;
  { syscall.size } -> std::convertible_to<size_t>;
};

// ReportsControlCut: a `bool control_cut` member, set by a read that stopped
// short at a control message it had no room for (more data is queued behind
// it): such a short read does not mean drained.
template <typename Syscall>
concept ReportsControlCut = requires(Syscall& syscall) {
  { syscall.control_cut } -> std::convertible_to<bool>;
};

// ReportsDrained: a `bool drained` member and a `size` member, set when the
// kernel itself said nothing is left (TCP_INQ, SO_INQ): the next hinted
// read waits for the edge.
template <typename Syscall>
concept ReportsDrained = requires(Syscall& syscall) {
  { syscall.drained } -> std::convertible_to<bool>;
  { syscall.size } -> std::convertible_to<size_t>;
};

// Where an operation waits: a registered descriptor's slot in one direction.
struct WaitTarget {
  EventLoop* loop;  // nullptr: the descriptor is closed or not registered
  int fd;
  uint32_t generation;
  bool for_write;
  bool short_read_drains;  // the descriptor takes read hints
};

// An operation waiting in one direction's slot of a registered descriptor.
// It copies what it needs, so the AsyncFd may move meanwhile.
class SlotAwaiter : public IoOperation {
 public:
  // Takes the slot and suspends; fails if the fd is closed or another
  // operation waits there.
  bool await_suspend(std::coroutine_handle<> handle) noexcept {
    IoOperation** slot =
        loop() != nullptr ? LoopAccess::WaitSlot(*loop(), fd_, generation_, for_write_) : nullptr;
    if (slot == nullptr || *slot != nullptr) [[unlikely]] {
      slot = PrepareSlot();
      if (slot == nullptr) return false;
    }
    *slot = this;
    Suspend(*loop(), handle);
    return true;
  }

 protected:
  SlotAwaiter(const WaitTarget& target, const Cancellation& cancel)
      : IoOperation(cancel, target.loop),
        fd_(target.fd),
        generation_(target.generation),
        for_write_(target.for_write),
        short_read_drains_(target.short_read_drains) {}
  SlotAwaiter(SlotAwaiter&&) = default;
  ~SlotAwaiter() = default;
  // Read hints; free for descriptors without them.
  bool KnownDrained() const {
    return short_read_drains_ && LoopAccess::KnownDrained(*loop(), fd_, generation_);
  }
  void NoteShortRead() {
    if (short_read_drains_) LoopAccess::NoteShortRead(*loop(), fd_, generation_);
  }
  // The error an operation ends with: its early-completion status, or else
  // the errno in `result` (negated) naming `what` and the fd. Kept out of
  // line so that the success path needs no stack frame.
  absl::Status Failure(ssize_t result, const char* what);

 private:
  // The slow path of await_suspend: adds the descriptor to the epoll set on
  // its first wait and returns the free slot, or sets status() to why there
  // is none (epoll refused, the fd is closed, another operation waits).
  IoOperation** PrepareSlot();
  void Unlink() noexcept override;

  int fd_;
  uint32_t generation_;
  bool for_write_;
  bool short_read_drains_;
};

template <typename Syscall>
class PerformAwaiter final : public SlotAwaiter {
 public:
  PerformAwaiter(const WaitTarget& target, const char* what, Syscall syscall,
                 const Cancellation& cancel)
      : SlotAwaiter(target, cancel), syscall_(std::move(syscall)) {
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
  // Yields the count or error, or what the syscall's Finish makes of it.
  decltype(auto) await_resume() {
    if constexpr (SyscallFinishes<Syscall>) {
      return syscall_.Finish(Result());
    } else {
      return Result();
    }
  }
  bool Attempt() noexcept override {
    while (true) {
      result_ = syscall_();
      if (result_ >= 0) {
        NoteHints();
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

  // After a successful read: was the descriptor left empty?
  void NoteHints() {
    if constexpr (ShortReadDrains<Syscall>) {
      if (result_ > 0 && static_cast<size_t>(result_) < syscall_.size && !ControlCut()) {
        NoteShortRead();
      }
    }
    if constexpr (ReportsDrained<Syscall>) {
      if (syscall_.drained) NoteShortRead();
    }
  }

  bool ControlCut() const {
    if constexpr (ReportsControlCut<Syscall>) {
      return syscall_.control_cut;
    } else {
      return false;
    }
  }

  static constexpr bool kNamed = SyscallNamesItself<Syscall>;
  static constexpr bool kUsesReadHint = ShortReadDrains<Syscall> || ReportsDrained<Syscall>;
  struct NoName {};
  [[no_unique_address]] std::conditional_t<kNamed, NoName, const char*> what_{};
  Syscall syscall_;
  ssize_t result_ = -1;  // the count, or minus the errno
};

class ReadinessAwaiter final : public SlotAwaiter {
 public:
  ReadinessAwaiter(const WaitTarget& target, const Cancellation& cancel)
      : SlotAwaiter(target, cancel) {}
  ReadinessAwaiter(ReadinessAwaiter&&) = default;
  ~ReadinessAwaiter() { Abandon(); }

  bool await_ready() noexcept {
    status() = StopStatus();
    return !status().ok();
  }
  absl::Status await_resume() { return std::move(status()); }
  bool Attempt() noexcept override { return true; }
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_PERFORM_H_
