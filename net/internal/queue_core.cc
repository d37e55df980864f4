#include "net/internal/queue_core.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace conet::internal {

QueueCore::QueueCore(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}

void QueueCore::Stored() {
  ++size_;
  Balance();
}

void QueueCore::Taken() {
  --size_;
  Balance();
}

void QueueCore::ReturnRoom() {
  --reserved_;
  Balance();
}

void QueueCore::ReturnValue() {
  --promised_;
  Balance();
}

void QueueCore::Close() {
  closed_ = true;
  Balance();
}

void QueueCore::Balance() {
  while (!poppers_.Empty() && size_ > promised_) {
    ++promised_;
    poppers_.WakeFront(absl::OkStatus());
  }
  if (closed_) {
    pushers_.WakeAll(QueueClosedError("BoundedQueue::Push"));
    // A value promised to a woken Pop may yet come back to the others.
    if (size_ == 0) poppers_.WakeAll(QueueEndError("BoundedQueue::Pop"));
    return;
  }
  while (!pushers_.Empty() && size_ + reserved_ < capacity_) {
    ++reserved_;
    pushers_.WakeFront(absl::OkStatus());
  }
}

absl::Status QueueClosedError(const char* what) {
  return absl::FailedPreconditionError(absl::StrCat(what, ": the queue is closed"));
}

absl::Status QueueEndError(const char* what) {
  return absl::OutOfRangeError(absl::StrCat(what, ": the queue is closed and empty"));
}

}  // namespace conet::internal
