// File: net/internal/poller_wait.h
//
// Poller::Wait, inline for the one caller that runs it on every pass
// (net/event_loop.cc) and for poller.cc. Part of the poller seam: with
// poller.cc, the only code that includes <sys/epoll.h>. Include it from a
// .cc file, never from a header.
#ifndef CONET_NET_INTERNAL_POLLER_WAIT_H_
#define CONET_NET_INTERNAL_POLLER_WAIT_H_

#include <sys/epoll.h>

#include <cerrno>
#include <ctime>
#include <span>

#include "net/internal/poller.h"

namespace conet::internal {

inline std::span<const PollEvent> Poller::Wait(int64_t timeout_ns) {
  auto* events = reinterpret_cast<epoll_event*>(events_.data());
  int n;
  if (have_pwait2_) [[likely]] {
    timespec timeout{};
    if (timeout_ns != kNoTimeout) {
      timeout.tv_sec = timeout_ns / 1'000'000'000;
      timeout.tv_nsec = timeout_ns % 1'000'000'000;
    }
    n = ::epoll_pwait2(epoll_fd_.fd(), events, kMaxEventsPerWait,
                       timeout_ns != kNoTimeout ? &timeout : nullptr, nullptr);
  } else {
    n = ::epoll_wait(epoll_fd_.fd(), events, kMaxEventsPerWait, ToWaitMilliseconds(timeout_ns));
  }
  if (n < 0) [[unlikely]]
    n = WaitAgain(timeout_ns, errno);
  return std::span<const PollEvent>(events_.data(), static_cast<size_t>(n));
}

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_POLLER_WAIT_H_
