#include "net/async_fd.h"

#include "absl/strings/str_cat.h"

namespace conet {

absl::StatusOr<AsyncFd> AsyncFd::Create(UniqueFd fd, EventLoop* loop) {
  absl::StatusOr<EventLoop*> target =
      internal::LoopOrCurrent(loop, absl::StrCat("cannot register fd ", fd.fd()));
  if (!target.ok()) return target.status();
  absl::StatusOr<uint32_t> generation = internal::LoopAccess::Register(**target, fd.fd());
  if (!generation.ok()) return generation.status();
  return AsyncFd(std::move(fd), *target, *generation);
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

}  // namespace conet
