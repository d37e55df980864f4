#include "net/internal/poller.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "net/internal/poller_wait.h"

namespace conet::internal {
static_assert(sizeof(PollEvent) == sizeof(epoll_event));
static_assert(offsetof(PollEvent, events) == offsetof(epoll_event, events));
static_assert(offsetof(PollEvent, tag) == offsetof(epoll_event, data));
static_assert(uint32_t{kReadable} == (EPOLLIN | EPOLLPRI | EPOLLRDHUP));
static_assert(uint32_t{kWritable} == EPOLLOUT);
static_assert(uint32_t{kError} == (EPOLLERR | EPOLLHUP));
static_assert(uint32_t{kReadHangup} == (EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP));

absl::StatusOr<Poller> Poller::Create() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  return Poller(UniqueFd(fd));
}

absl::Status Poller::Add(int fd, uint64_t tag) {
  epoll_event event{};
  // EPOLLPRI too: urgent data makes a TCP read stop short (see kReadHangup).
  event.events = EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = tag;
  if (::epoll_ctl(epoll_fd_.fd(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("epoll_ctl ADD fd ", fd));
  }
  return absl::OkStatus();
}

absl::Status Poller::Remove(int fd) {
  if (::epoll_ctl(epoll_fd_.fd(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("epoll_ctl DEL fd ", fd));
  }
  return absl::OkStatus();
}

int Poller::WaitAgain(int64_t timeout_ns, int error) {
  if (error == ENOSYS && have_pwait2_) {
    have_pwait2_ = false;  // kernel < 5.11: millisecond epoll_wait from now on
    const std::span<const PollEvent> events = Wait(timeout_ns);
    return static_cast<int>(events.size());
  }
  if (error == EINTR) return 0;
  WaitFailed(error);
}

void Poller::WaitFailed(int error) const {
  std::fprintf(stderr, "conet: fatal: epoll wait on fd %d: %s\n", epoll_fd_.fd(),
               std::strerror(error));
  std::abort();
}

}  // namespace conet::internal
