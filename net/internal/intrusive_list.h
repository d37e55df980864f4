// File: net/internal/intrusive_list.h
//
// A minimal intrusive doubly-linked list. Nodes live inside the objects they
// link (operations, promises), so linking never allocates and an object can
// unlink itself in O(1) when it is destroyed.
#ifndef CONET_NET_INTERNAL_INTRUSIVE_LIST_H_
#define CONET_NET_INTERNAL_INTRUSIVE_LIST_H_

#include <cstddef>

namespace conet::internal {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;
  bool Linked() const { return next != nullptr; }
};

class IntrusiveList {
 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool Empty() const { return head_.next == &head_; }
  size_t Size() const { return size_; }
  ListNode* Front() const { return Empty() ? nullptr : head_.next; }

  void PushBack(ListNode* node) {
    node->prev = head_.prev;
    node->next = &head_;
    head_.prev->next = node;
    head_.prev = node;
    ++size_;
  }
  // Unlinks `node` if it is linked (into this list).
  void Remove(ListNode* node) {
    if (!node->Linked()) return;
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = nullptr;
    --size_;
  }
  ListNode* PopFront() {
    ListNode* node = Front();
    if (node != nullptr) Remove(node);
    return node;
  }

 private:
  ListNode head_;
  size_t size_ = 0;
};

}  // namespace conet::internal

#endif  // CONET_NET_INTERNAL_INTRUSIVE_LIST_H_
