#include "ipc/daemon.h"

int main() {
  // Bazel gives tests no LISTEN_FDS and no NOTIFY_SOCKET: nothing inherited.
  absl::StatusOr<std::unique_ptr<conet::ipc::Daemon>> daemon =
      conet::ipc::Daemon::Start({.program = "link"});
  return daemon.ok() && (*daemon)->TakeListeners().empty() ? 0 : 1;
}
