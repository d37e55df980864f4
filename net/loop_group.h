// File: net/loop_group.h
//
// LoopGroup runs one EventLoop per thread: conet's way to use several cores
// (one loop per core, typically with SO_REUSEPORT listeners so the kernel
// spreads connections; no work stealing, no shared locks on the hot path).
//
//   auto group = conet::LoopGroup::Create(2);
//   (*group)->SpawnOnEach([](int index) { return Serve(index); });
//   (*group)->Start();
//   ...
//   (*group)->Stop();  // loops return; Join() or the destructor waits
//
#ifndef CONET_NET_LOOP_GROUP_H_
#define CONET_NET_LOOP_GROUP_H_

#include <memory>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "net/event_loop.h"
#include "net/task.h"

namespace conet {

class LoopGroup {
 public:
  // Creates `threads` loops (threads >= 1); no thread runs yet.
  static absl::StatusOr<std::unique_ptr<LoopGroup>> Create(int threads);
  // Stops the loops and joins the threads.
  ~LoopGroup();

  int size() const { return static_cast<int>(loops_.size()); }
  EventLoop& loop(int index) { return *loops_.at(index); }

  // Calls `make_task(index)` on each loop's own thread and spawns the task
  // there (detached). Safe before or after Start().
  void SpawnOnEach(absl::AnyInvocable<Task<void>(int)> make_task);
  // Starts one thread per loop, each running its loop until Stop().
  void Start();
  // Asks every loop to return from Run() (thread-safe).
  void Stop() noexcept;
  // Waits for the threads to end.
  void Join();

 private:
  explicit LoopGroup(std::vector<std::unique_ptr<EventLoop>> loops) : loops_(std::move(loops)) {}

  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace conet

#endif  // CONET_NET_LOOP_GROUP_H_
