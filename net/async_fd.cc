#include "net/async_fd.h"

namespace conet {

absl::StatusOr<AsyncFd> AsyncFd::Create(UniqueFd fd, EventLoop& loop) {
  absl::StatusOr<uint32_t> generation = internal::LoopAccess::Register(loop, fd.fd());
  if (!generation.ok()) return generation.status();
  return AsyncFd(std::move(fd), &loop, *generation);
}

absl::StatusOr<AsyncFd> AsyncFd::Create(UniqueFd fd) {
  absl::StatusOr<EventLoop*> loop =
      internal::CurrentLoop(absl::StrCat("cannot register fd ", fd.fd()));
  if (!loop.ok()) return loop.status();
  return Create(std::move(fd), **loop);
}

AsyncFd::AsyncFd(AsyncFd&& other) noexcept
    : fd_(std::move(other.fd_)),
      loop_(std::exchange(other.loop_, nullptr)),
      generation_(other.generation_),
      short_read_drains_(std::exchange(other.short_read_drains_, false)) {}

AsyncFd& AsyncFd::operator=(AsyncFd&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::move(other.fd_);
    loop_ = std::exchange(other.loop_, nullptr);
    generation_ = other.generation_;
    short_read_drains_ = std::exchange(other.short_read_drains_, false);
  }
  return *this;
}

void AsyncFd::Close() noexcept { Release().Reset(); }

UniqueFd AsyncFd::Release() noexcept {
  if (loop_ != nullptr && fd_.is_open()) {
    internal::CheckLoopAlive(loop_, fd_.fd());
    internal::LoopAccess::Unregister(*loop_, fd_.fd(), generation_);
  }
  loop_ = nullptr;
  short_read_drains_ = false;
  return std::move(fd_);
}

AsyncFd::ReadinessAwaiter AsyncFd::Readable(const Cancellation& cancel) {
  return ReadinessAwaiter(this, Direction::kRead, cancel);
}

AsyncFd::ReadinessAwaiter AsyncFd::Writable(const Cancellation& cancel) {
  return ReadinessAwaiter(this, Direction::kWrite, cancel);
}

absl::Status AsyncFd::SlotAwaiter::Failure(ssize_t result, const char* what) {
  if (!status().ok()) return std::move(status());
  return absl::ErrnoToStatus(static_cast<int>(-result), absl::StrCat(what, " on fd ", fd_));
}

internal::IoOperation** AsyncFd::SlotAwaiter::PrepareSlot() {
  internal::IoOperation** slot = nullptr;
  if (loop() != nullptr) {
    if (absl::Status watched = internal::LoopAccess::Watch(*loop(), fd_, generation_);
        !watched.ok()) {
      status() = std::move(watched);
      return nullptr;
    }
    slot = internal::LoopAccess::WaitSlot(*loop(), fd_, generation_, for_write_);
  }
  if (slot == nullptr) {
    status() =
        absl::FailedPreconditionError(absl::StrCat("fd ", fd_, " is closed or not registered"));
    return nullptr;
  }
  if (*slot != nullptr) {
    status() = absl::FailedPreconditionError(
        absl::StrCat("fd ", fd_, " already has a pending ", for_write_ ? "write" : "read"));
    return nullptr;
  }
  return slot;
}

void AsyncFd::SlotAwaiter::Unlink() noexcept {
  internal::IoOperation** slot = internal::LoopAccess::Slot(*loop(), fd_, generation_, for_write_);
  if (slot != nullptr && *slot == this) *slot = nullptr;
}

}  // namespace conet
