#include "net/loop_group.h"

#include "absl/status/status.h"

namespace conet {

absl::StatusOr<std::unique_ptr<LoopGroup>> LoopGroup::Create(int threads) {
  if (threads < 1) {
    return absl::InvalidArgumentError("LoopGroup needs at least one thread");
  }
  std::vector<std::unique_ptr<EventLoop>> loops;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
    if (!loop.ok()) return loop.status();
    loops.push_back(*std::move(loop));
  }
  return std::unique_ptr<LoopGroup>(new LoopGroup(std::move(loops)));
}

LoopGroup::~LoopGroup() {
  Stop();
  Join();
  // Each loop is destroyed on this thread, after its own thread ended.
}

void LoopGroup::SpawnOnEach(absl::AnyInvocable<Task<void>(int)> make_task) {
  auto factory = std::make_shared<absl::AnyInvocable<Task<void>(int)>>(std::move(make_task));
  for (int i = 0; i < size(); ++i) {
    EventLoop* loop = loops_[i].get();
    loop->Post([loop, factory, i] { loop->SpawnDetached((*factory)(i)); });
  }
}

void LoopGroup::Start() {
  for (auto& loop : loops_) {
    threads_.emplace_back([raw = loop.get()] { raw->Run(); });
  }
}

void LoopGroup::Stop() noexcept {
  for (auto& loop : loops_) loop->Stop();
}

void LoopGroup::Join() {
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

}  // namespace conet
