// Costs of conet's runtime building blocks, each against the smallest thing
// that shows it: awaiting a task, posting to a loop (from its own thread and
// from another), inserting and cancelling a timer, and a 64-byte round trip
// over a stream socketpair (conet's two socket types and plain blocking
// send/recv).
//
//   ./tools/bazel run -c opt //bench:runtime_bench
//
// items_per_second counts awaits, posted functions run, timers inserted and
// cancelled, or round trips.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <semaphore>
#include <span>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmark/benchmark.h"
#include "ipc/unix_socket.h"
#include "net/event_loop.h"
#include "net/internal/timer_heap.h"
#include "net/stream_socket.h"
#include "net/task.h"
#include "net/timer.h"

namespace {

std::unique_ptr<conet::EventLoop> MakeLoop() {
  absl::StatusOr<std::unique_ptr<conet::EventLoop>> loop = conet::EventLoop::Create();
  if (!loop.ok()) std::abort();
  return *std::move(loop);
}

// --- Task create and await -----------------------------------------------

conet::Task<int> One() { co_return 1; }
conet::Task<int> OneViaOne() { co_return co_await One(); }

// Awaits a fresh task per iteration: frame allocation, start, completion,
// resumption of the awaiter and frame destruction. Depth 2 awaits a task
// that awaits another.
conet::Task<void> AwaitTasks(benchmark::State* state, conet::Task<int> (*make)()) {
  int64_t sum = 0;
  for (auto _ : *state) {
    sum += co_await make();
  }
  if (sum != state->iterations()) std::abort();
  benchmark::DoNotOptimize(sum);
  state->SetItemsProcessed(state->iterations());
}

void TaskCreateAndAwait(benchmark::State& state) {
  std::unique_ptr<conet::EventLoop> loop = MakeLoop();
  loop->BlockOn(AwaitTasks(&state, state.range(0) == 1 ? &One : &OneViaOne));
}

// --- Post ------------------------------------------------------------------

// Posts `batch` functions, then yields so that the loop runs them (one poll,
// one eventfd read and one resumption per batch: batch 1 shows a whole
// turn of the loop, a large batch the cost of Post itself).
conet::Task<void> PostAndYield(benchmark::State* state, conet::EventLoop* loop, int batch) {
  int64_t ran = 0;
  int64_t* counter = &ran;
  for (auto _ : *state) {
    for (int i = 0; i < batch; ++i) loop->Post([counter] { ++*counter; });
    co_await conet::Yield();
  }
  if (ran != state->iterations() * batch) std::abort();
  state->SetItemsProcessed(state->iterations() * batch);
}

void PostFromLoopThread(benchmark::State& state) {
  std::unique_ptr<conet::EventLoop> loop = MakeLoop();
  loop->BlockOn(PostAndYield(&state, loop.get(), static_cast<int>(state.range(0))));
}

// A producer thread posts `posts` functions per iteration while this thread
// runs the loop; the last function to run stops it. The producer waits on a
// semaphore between iterations, so no thread is started inside the timing.
struct PostTarget {
  conet::EventLoop* loop;
  int64_t posts;
  int64_t ran;  // touched only by posted functions and between runs
};

void PostFromAnotherThread(benchmark::State& state) {
  std::unique_ptr<conet::EventLoop> loop = MakeLoop();
  PostTarget target{loop.get(), state.range(0), 0};
  // One pointer captured: it fits AnyInvocable's inline storage (16 bytes
  // here), so this measures Post rather than a heap allocation per function.
  PostTarget* shared = &target;
  std::binary_semaphore go(0);
  std::atomic<bool> quit{false};
  std::thread producer([shared, &go, &quit] {
    while (true) {
      go.acquire();
      if (quit.load(std::memory_order_acquire)) return;
      for (int64_t i = 0; i < shared->posts; ++i) {
        shared->loop->Post([shared] {
          if (++shared->ran == shared->posts) shared->loop->Stop();
        });
      }
    }
  });
  for (auto _ : state) {
    target.ran = 0;
    go.release();
    target.loop->Run();
  }
  quit.store(true, std::memory_order_release);
  go.release();
  producer.join();
  state.SetItemsProcessed(state.iterations() * target.posts);
}

// --- Timers ----------------------------------------------------------------

// Inserts and removes an hour-long timer among `others` timers whose
// deadlines are spread over two hours in scrambled order, as a Sleep(1h)
// cancelled before it fires would.
void TimerInsertCancel(benchmark::State& state) {
  constexpr int64_t kHourNs = int64_t{3600} * 1'000'000'000;
  const size_t others = static_cast<size_t>(state.range(0));
  const int64_t now = conet::internal::MonotonicNowNs();
  conet::internal::TimerHeap heap;
  std::vector<conet::internal::TimerNode> nodes(others);
  for (size_t i = 0; i < others; ++i) {
    const auto slot = static_cast<int64_t>((i * 7919) % others);  // 7919: prime
    nodes[i].deadline_ns = now + slot * 2 * kHourNs / static_cast<int64_t>(others);
    heap.Insert(&nodes[i]);
  }
  conet::internal::TimerNode timer;
  timer.deadline_ns = now + kHourNs;
  for (auto _ : state) {
    heap.Insert(&timer);
    heap.Remove(&timer);
  }
  if (heap.Size() != others || timer.InHeap()) std::abort();
  state.SetItemsProcessed(state.iterations());
}

// --- Socketpair round trip -------------------------------------------------

constexpr size_t kMessageSize = 64;

// Sends 64 bytes on one end of a stream socketpair and receives them on
// the other, in turn, with ipc::UnixSocket's Send / Receive.
conet::Task<void> UnixSocketRoundTrips(benchmark::State* state) {
  absl::StatusOr<std::pair<conet::ipc::UnixSocket, conet::ipc::UnixSocket>> pair =
      conet::ipc::SocketPair(conet::ipc::SocketType::kStream);
  if (!pair.ok()) std::abort();
  std::array<char, kMessageSize> out;
  out.fill('x');
  std::array<char, kMessageSize> in;
  const std::span<const char> message(out);
  for (auto _ : *state) {
    absl::StatusOr<size_t> sent = co_await pair->first.Send(message);
    if (!sent.ok()) std::abort();
    size_t got = 0;
    while (got < kMessageSize) {
      const std::span<char> rest = std::span<char>(in).subspan(got);
      absl::StatusOr<conet::ipc::ReceivedMessage> received = co_await pair->second.Receive(rest);
      if (!received.ok() || received->size == 0) std::abort();
      got += received->size;
    }
  }
  state->SetItemsProcessed(state->iterations());
}

void SocketpairRoundTrip(benchmark::State& state) {
  std::unique_ptr<conet::EventLoop> loop = MakeLoop();
  loop->BlockOn(UnixSocketRoundTrips(&state));
}

// The same with StreamSocket::Adopt of the socketpair's ends: WriteAll / ReadSome.
conet::Task<void> StreamSocketRoundTrips(benchmark::State* state) {
  absl::StatusOr<std::pair<conet::UniqueFd, conet::UniqueFd>> fds =
      conet::ipc::SocketPairFds(conet::ipc::SocketType::kStream);
  if (!fds.ok()) std::abort();
  absl::StatusOr<conet::StreamSocket> writer = conet::StreamSocket::Adopt(std::move(fds->first));
  absl::StatusOr<conet::StreamSocket> reader = conet::StreamSocket::Adopt(std::move(fds->second));
  if (!writer.ok() || !reader.ok()) std::abort();
  std::array<char, kMessageSize> out;
  out.fill('x');
  std::array<char, kMessageSize> in;
  const std::span<const char> message(out);
  for (auto _ : *state) {
    absl::StatusOr<size_t> sent = co_await writer->WriteAll(message);
    if (!sent.ok()) std::abort();
    size_t got = 0;
    while (got < kMessageSize) {
      const std::span<char> rest = std::span<char>(in).subspan(got);
      absl::StatusOr<size_t> n = co_await reader->ReadSome(rest);
      if (!n.ok() || *n == 0) std::abort();
      got += *n;
    }
  }
  state->SetItemsProcessed(state->iterations());
}

void SocketpairRoundTripStreamSocket(benchmark::State& state) {
  std::unique_ptr<conet::EventLoop> loop = MakeLoop();
  loop->BlockOn(StreamSocketRoundTrips(&state));
}

// Reads with recv(2), or with recvmsg(2) and no control buffer (what
// StreamSocket does on a UNIX stream), to show what the kernel charges for it.
ssize_t ReceiveWithRecv(int fd, char* data, size_t size) { return ::recv(fd, data, size, 0); }
ssize_t ReceiveWithRecvmsg(int fd, char* data, size_t size) {
  iovec iov{data, size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  return ::recvmsg(fd, &msg, 0);
}

// The baseline: blocking send / receive on a plain socketpair.
template <ssize_t (*Receive)(int, char*, size_t)>
void PlainSocketpairRoundTrip(benchmark::State& state) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) std::abort();
  std::array<char, kMessageSize> out;
  out.fill('x');
  std::array<char, kMessageSize> in;
  for (auto _ : state) {
    if (::send(pair[0], out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
      std::abort();
    }
    size_t got = 0;
    while (got < kMessageSize) {
      const ssize_t n = Receive(pair[1], in.data() + got, kMessageSize - got);
      if (n <= 0) std::abort();
      got += static_cast<size_t>(n);
    }
  }
  state.SetItemsProcessed(state.iterations());
  ::close(pair[0]);
  ::close(pair[1]);
}

BENCHMARK(TaskCreateAndAwait)->ArgName("depth")->Arg(1)->Arg(2);
BENCHMARK(PostFromLoopThread)->ArgName("batch")->Arg(1)->Arg(64);
// Real time: this thread sleeps in epoll while the producer works.
BENCHMARK(PostFromAnotherThread)->ArgName("posts")->Arg(10000)->UseRealTime();
BENCHMARK(TimerInsertCancel)->ArgName("others")->Arg(0)->Arg(1000);
BENCHMARK(SocketpairRoundTrip);
BENCHMARK(SocketpairRoundTripStreamSocket);
BENCHMARK_TEMPLATE(PlainSocketpairRoundTrip, ReceiveWithRecv)->Name("PlainSocketpairRoundTrip");
BENCHMARK_TEMPLATE(PlainSocketpairRoundTrip, ReceiveWithRecvmsg)
    ->Name("PlainSocketpairRoundTripRecvmsg");

}  // namespace

BENCHMARK_MAIN();
