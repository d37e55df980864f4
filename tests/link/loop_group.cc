#include "net/loop_group.h"

int main() {
  auto group = conet::LoopGroup::Create(1);
  return group.ok() ? 0 : 1;
}
