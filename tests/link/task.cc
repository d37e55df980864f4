#include "net/task.h"

conet::Task<int> Seven() { co_return 7; }
conet::Task<int> Twice() { co_return 2 * co_await Seven(); }

int main() {
  // Runs a task chain by hand, without an EventLoop.
  conet::Task<int> task = Twice();
  task.handle().resume();
  return task.handle().done() && task.handle().promise().TakeResult() == 14 ? 0 : 1;
}
