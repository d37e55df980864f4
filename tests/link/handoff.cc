#include "ipc/handoff.h"

#include <unistd.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "net/event_loop.h"

int main() {
  // Nobody answers at a fresh abstract name: no takeover, no error.
  absl::StatusOr<conet::SocketAddress> address =
      conet::SocketAddress::Parse(absl::StrCat("unix:@conet-link-handoff-", ::getpid()));
  auto loop = conet::EventLoop::Create();
  if (!address.ok() || !loop.ok()) return 1;
  absl::StatusOr<std::optional<conet::ipc::Takeover>> takeover =
      (*loop)->BlockOn(conet::ipc::Takeover::Begin(*address, conet::Within(absl::Seconds(5))));
  return takeover.ok() && !takeover->has_value() ? 0 : 1;
}
