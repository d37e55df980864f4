// File: net/internal/poller.h
//
// Poller is the one seam between conet and the OS readiness API (epoll). It
// is the only code that calls epoll; another backend would be one new file
// implementing this class. This header does not include <sys/epoll.h>, so
// that the public headers that hold a Poller (net/event_loop.h) do not
// bring it to users: Wait, which the loop calls on every pass and wants
// inlined, is defined in poller_wait.h, included by the loop's .cc alone.
#ifndef CONET_NET_INTERNAL_POLLER_H_
#define CONET_NET_INTERNAL_POLLER_H_

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <ctime>
#include <limits>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/unique_fd.h"

namespace conet::internal {

// Readiness bits reported by Poller::Wait: masks over the epoll bits, which
// PollEvent carries unconverted (poller.cc checks the values).
enum PollEvents : uint32_t {
  kReadable = 0x001 | 0x002 | 0x2000,  // EPOLLIN | EPOLLPRI | EPOLLRDHUP
  kWritable = 0x004,                   // EPOLLOUT
  kError = 0x008 | 0x010,              // EPOLLERR | EPOLLHUP: wakes both directions
  // Reading may never block again, or stops short of what is queued:
  // EPOLLPRI | EPOLLRDHUP | EPOLLERR | EPOLLHUP.
  kReadHangup = 0x002 | 0x2000 | 0x008 | 0x010,
};

// Laid out exactly as struct epoll_event (packed on x86-64, as the kernel's
// is), so the kernel fills an array of these directly.
struct
#if defined(__x86_64__)
    __attribute__((packed))
#endif
    PollEvent {
  uint32_t events;  // PollEvents bits
  uint64_t tag;
};

class Poller {
 public:
  // Creates a poller (epoll_create1 with EPOLL_CLOEXEC).
  static absl::StatusOr<Poller> Create();

  Poller(Poller&&) = default;
  Poller& operator=(Poller&&) = default;

  // Watches `fd` for both directions, edge-triggered; events carry `tag`.
  absl::Status Add(int fd, uint64_t tag);
  // Stops watching `fd`.
  absl::Status Remove(int fd);
  // Waits until an event or `timeout_ns` nanoseconds pass (kNoTimeout: no
  // limit, 0: do not block) and returns the events (none if a signal
  // interrupted the wait), valid until the next Wait. The wait itself cannot
  // fail on a valid poller (EBADF, EFAULT, EINVAL are bugs): it aborts with
  // a message if it does.
  static constexpr int64_t kNoTimeout = -1;
  // Defined in poller_wait.h.
  std::span<const PollEvent> Wait(int64_t timeout_ns);

  // The epoll_wait timeout for a Wait timeout (kernels without
  // epoll_pwait2): rounded up, so that a timer is never woken for before
  // its deadline, and capped at INT_MAX milliseconds (24.8 days; the loop
  // simply waits again). -1 (no limit) for kNoTimeout.
  static int ToWaitMilliseconds(int64_t timeout_ns) {
    if (timeout_ns == kNoTimeout) return -1;
    const int64_t ms = timeout_ns / 1'000'000 + (timeout_ns % 1'000'000 != 0 ? 1 : 0);
    return static_cast<int>(std::min<int64_t>(ms, std::numeric_limits<int>::max()));
  }

 private:
  explicit Poller(UniqueFd epoll_fd) : epoll_fd_(std::move(epoll_fd)), events_(kMaxEventsPerWait) {}

  static constexpr int kMaxEventsPerWait = 256;
  // Wait's rare paths: a kernel without epoll_pwait2 (retries with
  // epoll_wait) and a failed wait. Returns the event count.
  int WaitAgain(int64_t timeout_ns, int error);
  [[noreturn]] void WaitFailed(int error) const;

  UniqueFd epoll_fd_;
  std::vector<PollEvent> events_;
  bool have_pwait2_ = true;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_POLLER_H_
