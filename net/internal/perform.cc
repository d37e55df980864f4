#include "net/internal/perform.h"

#include "absl/strings/str_cat.h"

namespace conet::internal {

absl::Status SlotAwaiter::Failure(ssize_t result, const char* what) {
  if (!status().ok()) return std::move(status());
  return absl::ErrnoToStatus(static_cast<int>(-result), absl::StrCat(what, " on fd ", fd_));
}

IoOperation** SlotAwaiter::PrepareSlot() {
  IoOperation** slot = nullptr;
  if (loop() != nullptr) {
    if (absl::Status watched = LoopAccess::Watch(*loop(), fd_, generation_); !watched.ok()) {
      status() = std::move(watched);
      return nullptr;
    }
    slot = LoopAccess::WaitSlot(*loop(), fd_, generation_, for_write_);
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

void SlotAwaiter::Unlink() noexcept {
  IoOperation** slot = LoopAccess::Slot(*loop(), fd_, generation_, for_write_);
  if (slot != nullptr && *slot == this) *slot = nullptr;
}

}  // namespace conet::internal
