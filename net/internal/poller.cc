#include "net/internal/poller.h"

#include <sys/epoll.h>

#include <cerrno>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace conet::internal {
namespace {

constexpr int kMaxEventsPerWait = 256;

uint32_t ToPollEvents(uint32_t epoll_events) {
  uint32_t events = 0;
  if (epoll_events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI)) events |= kReadable;
  if (epoll_events & EPOLLOUT) events |= kWritable;
  if (epoll_events & (EPOLLERR | EPOLLHUP)) events |= kError;
  return events;
}

}  // namespace

absl::StatusOr<Poller> Poller::Create() {
  const int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return absl::ErrnoToStatus(errno, "epoll_create1");
  return Poller(UniqueFd(fd));
}

absl::Status Poller::Add(int fd, uint64_t tag) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.u64 = tag;
  if (::epoll_ctl(epoll_fd_.Get(), EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("epoll_ctl ADD fd ", fd));
  }
  return absl::OkStatus();
}

absl::Status Poller::Remove(int fd) {
  if (::epoll_ctl(epoll_fd_.Get(), EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("epoll_ctl DEL fd ", fd));
  }
  return absl::OkStatus();
}

absl::Status Poller::Wait(std::optional<int64_t> timeout_ns,
                          std::vector<PollEvent>& out) {
  epoll_event events[kMaxEventsPerWait];
  int n;
  if (have_pwait2_) {
    timespec timeout{};
    if (timeout_ns) {
      timeout.tv_sec = *timeout_ns / 1'000'000'000;
      timeout.tv_nsec = *timeout_ns % 1'000'000'000;
    }
    n = ::epoll_pwait2(epoll_fd_.Get(), events, kMaxEventsPerWait,
                       timeout_ns ? &timeout : nullptr, nullptr);
    if (n < 0 && errno == ENOSYS) {
      have_pwait2_ = false;  // kernel < 5.11: millisecond epoll_wait below
      return Wait(timeout_ns, out);
    }
  } else {
    // Round up, so a timer is never woken for before its deadline.
    const int timeout_ms =
        timeout_ns ? static_cast<int>((*timeout_ns + 999'999) / 1'000'000) : -1;
    n = ::epoll_wait(epoll_fd_.Get(), events, kMaxEventsPerWait, timeout_ms);
  }
  out.clear();
  if (n < 0) {
    if (errno == EINTR) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, "epoll_pwait2");
  }
  for (int i = 0; i < n; ++i) {
    out.push_back({events[i].data.u64, ToPollEvents(events[i].events)});
  }
  return absl::OkStatus();
}

}  // namespace conet::internal
