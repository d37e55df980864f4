// File: net/internal/queue_core.h
//
// QueueCore is BoundedQueue's bookkeeping apart from the values themselves
// (net/bounded_queue.h): the counts, the waiting Pushes and Pops, and the
// mutex that guards them and the values. It grants waiters what they wait
// for as soon as the counts allow: a woken Pop is promised a value that
// stays queued until it takes it, a woken Push is promised room that it
// fills when it resumes, and either gives back what it was promised if it
// never resumes (see net/internal/wait_list.h). So no value is ever outside
// the queue while on its way to a consumer.
#ifndef CONET_NET_INTERNAL_QUEUE_CORE_H_
#define CONET_NET_INTERNAL_QUEUE_CORE_H_

#include <cstddef>
#include <mutex>

#include "absl/status/status.h"
#include "net/internal/wait_list.h"

namespace conet::internal {

class QueueCore {
 public:
  explicit QueueCore(size_t capacity);

  std::mutex& mu() const { return mu_; }
  size_t capacity() const { return capacity_; }

  // The rest with mu() held.
  bool closed() const { return closed_; }
  size_t size() const { return size_; }
  // Whether a value not promised to a woken Pop is queued.
  bool CanTake() const { return size_ > promised_; }
  // Whether a Pop must end: the queue is closed and empty.
  bool Drained() const { return closed_ && size_ == 0; }
  // Whether a value may be stored now (open, room not promised away).
  bool HasRoom() const { return !closed_ && size_ + reserved_ < capacity_; }
  WaitList& pushers() { return pushers_; }
  WaitList& poppers() { return poppers_; }

  // Records a value stored or taken, and wakes those that lets go on.
  void Stored();
  void Taken();
  // A woken Push uses the room it was promised, or gives it back.
  void UseRoom() { --reserved_; }
  void ReturnRoom();
  // A woken Pop uses the value it was promised, or gives it back.
  void UseValue() { --promised_; }
  void ReturnValue();
  // Closes the queue: waiting Pushes fail, and Pops once it is empty.
  void Close();

 private:
  void Balance();

  mutable std::mutex mu_;
  const size_t capacity_;
  size_t size_ = 0;      // values queued
  size_t promised_ = 0;  // of those, promised to woken Pops
  size_t reserved_ = 0;  // room promised to woken Pushes
  bool closed_ = false;
  WaitList pushers_;
  WaitList poppers_;
};

// The errors of a closed queue, for the call `what`.
absl::Status QueueClosedError(const char* what);
absl::Status QueueEndError(const char* what);

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_QUEUE_CORE_H_
