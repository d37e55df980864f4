// File: net/internal/poller.h
//
// Poller is the one seam between conet and the OS readiness API (epoll). It
// is the only code that includes <sys/epoll.h>; another backend would be one
// new file implementing this class.
#ifndef CONET_NET_INTERNAL_POLLER_H_
#define CONET_NET_INTERNAL_POLLER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "net/unique_fd.h"

namespace conet::internal {

// Readiness bits reported by Poller::Wait.
enum PollEvents : uint32_t {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kError = 1u << 2,  // error or hang-up: wakes both directions
};

struct PollEvent {
  uint64_t tag;
  uint32_t events;  // PollEvents bits
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
  // Waits until an event or `timeout_ns` nanoseconds pass (nullopt: no limit,
  // 0: do not block) and appends the events to `out` (cleared first).
  absl::Status Wait(std::optional<int64_t> timeout_ns,
                    std::vector<PollEvent>& out);

 private:
  explicit Poller(UniqueFd epoll_fd) : epoll_fd_(std::move(epoll_fd)) {}

  UniqueFd epoll_fd_;
  bool have_pwait2_ = true;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_POLLER_H_
