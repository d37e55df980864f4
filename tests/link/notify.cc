#include "ipc/notify.h"

#include "net/event_loop.h"

int main() {
  // Bazel gives tests no NOTIFY_SOCKET: a disabled Notifier, whose sends are OK.
  absl::StatusOr<conet::ipc::Notifier> notifier = conet::ipc::Notifier::FromEnvironment();
  auto loop = conet::EventLoop::Create();
  return notifier.ok() && loop.ok() && (*loop)->BlockOn(notifier->Ready()).ok() ? 0 : 1;
}
