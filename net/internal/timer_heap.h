// File: net/internal/timer_heap.h
//
// TimerHeap is an intrusive binary min-heap of TimerNodes ordered by deadline
// (monotonic nanoseconds), then by insertion order. Nodes live inside the
// operations that own them; each knows its heap index, so cancelling one is
// O(log n) and never leaves a stale entry behind.
#ifndef CONET_NET_INTERNAL_TIMER_HEAP_H_
#define CONET_NET_INTERNAL_TIMER_HEAP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace conet::internal {

// Returns CLOCK_MONOTONIC in nanoseconds.
int64_t MonotonicNowNs();

struct TimerNode {
  static constexpr size_t kNotInHeap = ~size_t{0};

  int64_t deadline_ns = 0;
  uint64_t sequence = 0;
  size_t heap_index = kNotInHeap;
  // Called when the deadline passes (the node is already out of the heap).
  void (*on_expire)(TimerNode*) = nullptr;
  void* context = nullptr;  // for on_expire

  bool InHeap() const { return heap_index != kNotInHeap; }
};

class TimerHeap {
 public:
  // Inserts `node` (which must not be in a heap).
  void Insert(TimerNode* node);
  // Removes `node` if it is in this heap.
  void Remove(TimerNode* node);
  // Returns the earliest node, or nullptr when empty.
  TimerNode* Top() const { return nodes_.empty() ? nullptr : nodes_.front(); }
  // Removes and returns the earliest node if its deadline is <= now_ns.
  TimerNode* PopExpired(int64_t now_ns);
  bool Empty() const { return nodes_.empty(); }
  size_t Size() const { return nodes_.size(); }

 private:
  static bool Before(const TimerNode* a, const TimerNode* b) {
    if (a->deadline_ns != b->deadline_ns) return a->deadline_ns < b->deadline_ns;
    return a->sequence < b->sequence;
  }
  void Place(size_t index, TimerNode* node);
  void SiftUp(size_t index);
  void SiftDown(size_t index);

  std::vector<TimerNode*> nodes_;
  uint64_t next_sequence_ = 0;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_TIMER_HEAP_H_
