#include "net/internal/timer_heap.h"

#include <time.h>

namespace conet::internal {

int64_t MonotonicNowNs() {
  timespec now;
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

void TimerHeap::Place(size_t index, TimerNode* node) {
  nodes_[index] = node;
  node->heap_index = index;
}

void TimerHeap::SiftUp(size_t index) {
  TimerNode* node = nodes_[index];
  while (index > 0) {
    const size_t parent = (index - 1) / 2;
    if (!Before(node, nodes_[parent])) break;
    Place(index, nodes_[parent]);
    index = parent;
  }
  Place(index, node);
}

void TimerHeap::SiftDown(size_t index) {
  TimerNode* node = nodes_[index];
  const size_t size = nodes_.size();
  while (true) {
    size_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && Before(nodes_[child + 1], nodes_[child])) ++child;
    if (!Before(nodes_[child], node)) break;
    Place(index, nodes_[child]);
    index = child;
  }
  Place(index, node);
}

void TimerHeap::Insert(TimerNode* node) {
  node->sequence = next_sequence_++;
  nodes_.push_back(node);
  SiftUp(nodes_.size() - 1);
}

void TimerHeap::Remove(TimerNode* node) {
  if (!node->InHeap()) return;
  const size_t index = node->heap_index;
  node->heap_index = TimerNode::kNotInHeap;
  TimerNode* last = nodes_.back();
  nodes_.pop_back();
  if (last == node) return;
  Place(index, last);
  SiftUp(index);
  SiftDown(last->heap_index);
}

TimerNode* TimerHeap::PopExpired(int64_t now_ns) {
  TimerNode* top = Top();
  if (top == nullptr || top->deadline_ns > now_ns) return nullptr;
  Remove(top);
  return top;
}

}  // namespace conet::internal
