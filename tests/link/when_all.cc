#include "net/when_all.h"

#include <vector>

#include "net/event_loop.h"

conet::Task<int> Value(int v) { co_return v; }

conet::Task<int> Sum() {
  std::vector<conet::Task<int>> tasks;
  tasks.push_back(Value(1));
  tasks.push_back(Value(2));
  std::vector<int> values = co_await conet::WhenAll(std::move(tasks));
  co_return values[0] + values[1];
}

int main() {
  auto loop = conet::EventLoop::Create();
  return loop.ok() && (*loop)->BlockOn(Sum()) == 3 ? 0 : 1;
}
