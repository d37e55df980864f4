#include "net/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "absl/strings/str_cat.h"

namespace conet {
namespace {

thread_local EventLoop* current_loop = nullptr;

constexpr uint64_t kWakeTag = std::numeric_limits<uint64_t>::max();

uint64_t MakeTag(int fd, uint32_t generation) {
  return (uint64_t{generation} << 32) | static_cast<uint32_t>(fd);
}

// Converts an absolute wall-clock deadline to the monotonic clock.
int64_t ToMonotonicNs(absl::Time deadline) {
  const absl::Duration left = deadline - absl::Now();
  const int64_t now = internal::MonotonicNowNs();
  if (left >= absl::Hours(24 * 365 * 100)) return std::numeric_limits<int64_t>::max();
  return now + absl::ToInt64Nanoseconds(left);
}

[[noreturn]] void Fatal(const absl::Status& status) {
  std::fprintf(stderr, "conet: fatal: %s\n", status.ToString().c_str());
  std::abort();
}

}  // namespace

namespace internal {

CurrentLoopScope::CurrentLoopScope(EventLoop* loop)
    : previous_(std::exchange(current_loop, loop)) {}
CurrentLoopScope::~CurrentLoopScope() { current_loop = previous_; }

// --- Operation -----------------------------------------------------------

absl::Status Operation::StopStatus() const {
  if (cancellation_.token().stop_requested() || ambient_token_.stop_requested()) {
    return absl::CancelledError("operation cancelled");
  }
  if (cancellation_.has_deadline() && cancellation_.deadline() <= absl::Now()) {
    return absl::DeadlineExceededError("deadline exceeded");
  }
  return absl::OkStatus();
}

struct Operation::Guards {
  struct OnStop {
    Operation* op;
    void operator()() const noexcept { op->StopRequested(); }
  };
  TimerNode deadline_timer;
  std::optional<std::stop_callback<OnStop>> stop_callback;
  std::optional<std::stop_callback<OnStop>> ambient_callback;
};

bool Operation::NeedsGuards() const noexcept {
  return cancellation_.has_deadline() || cancellation_.token().stop_possible() ||
         ambient_token_.stop_possible();
}

void Operation::Suspend(EventLoop& loop, std::coroutine_handle<> handle) {
  loop_ = &loop;
  handle_ = handle;
  pending_ = true;
  if (!NeedsGuards()) return;
  guards_ = new Guards;
  if (cancellation_.has_deadline()) {
    TimerNode& timer = guards_->deadline_timer;
    timer.deadline_ns = ToMonotonicNs(cancellation_.deadline());
    timer.on_expire = &Operation::DeadlinePassed;
    timer.context = this;
    loop.timers().Insert(&timer);
  }
  // A token stopped already runs the callback right here; that wake is
  // deferred to the ready queue, so it is safe before we have suspended.
  if (cancellation_.token().stop_possible()) {
    guards_->stop_callback.emplace(cancellation_.token(), Guards::OnStop{this});
  }
  if (ambient_token_.stop_possible()) {
    guards_->ambient_callback.emplace(ambient_token_, Guards::OnStop{this});
  }
}

void Operation::Wake(absl::Status status, bool resume_now) {
  if (!pending_) return;
  pending_ = false;
  if (guards_ != nullptr) loop_->timers().Remove(&guards_->deadline_timer);
  Unlink();
  status_ = std::move(status);
  if (resume_now) {
    handle_.resume();
  } else {
    ready_node.handle = handle_;
    loop_->Schedule(&ready_node);
  }
}

void Operation::StopRequested() noexcept {
  if (EventLoop::Current() == loop_) {
    CancelFromLoop();
  } else {
    loop_->CancelRemotely(this);
  }
}

void Operation::DeadlinePassed(TimerNode* node) {
  auto* op = static_cast<Operation*>(node->context);
  op->Wake(absl::DeadlineExceededError("deadline exceeded"), true);
}

void Operation::Abandon() noexcept {
  if (guards_ != nullptr) {
    // Destroying a stop_callback waits for a callback running on another
    // thread, so after these two lines no new cross-thread cancel can appear.
    guards_->stop_callback.reset();
    guards_->ambient_callback.reset();
  }
  if (loop_ != nullptr) {
    if (remote_queued) loop_->ForgetRemoteCancel(this);
    loop_->Unschedule(&ready_node);
    if (pending_) {
      pending_ = false;
      if (guards_ != nullptr) loop_->timers().Remove(&guards_->deadline_timer);
      Unlink();
    }
  }
  delete guards_;
  guards_ = nullptr;
}

}  // namespace internal

// --- EventLoop -----------------------------------------------------------

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  absl::StatusOr<internal::Poller> poller = internal::Poller::Create();
  if (!poller.ok()) return poller.status();
  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd.Valid()) return absl::ErrnoToStatus(errno, "eventfd");
  if (absl::Status s = poller->Add(wake_fd.Get(), kWakeTag); !s.ok()) return s;
  return std::unique_ptr<EventLoop>(
      new EventLoop(*std::move(poller), std::move(wake_fd)));
}

EventLoop::EventLoop(internal::Poller poller, UniqueFd wake_fd)
    : poller_(std::move(poller)), wake_fd_(std::move(wake_fd)) {}

EventLoop::~EventLoop() {
  internal::CurrentLoopScope scope(this);
  // Each detached frame's destruction unlinks it (and everything it awaits).
  while (internal::ListNode* node = detached_.Front()) {
    static_cast<internal::ReadyNode*>(node)->handle.destroy();
  }
  // Whatever is left ran as part of frames owned elsewhere (BlockOn tasks
  // are owned by their caller); posted callbacks are simply dropped.
  std::lock_guard<std::mutex> lock(remote_mu_);
  posted_.clear();
}

EventLoop* EventLoop::Current() noexcept { return current_loop; }

void EventLoop::Run() {
  internal::CurrentLoopScope scope(this);
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    RunOnce(/*may_block=*/true);
  }
}

void EventLoop::Stop() noexcept {
  stop_requested_.store(true, std::memory_order_release);
  WakeUp();
}

void EventLoop::Post(absl::AnyInvocable<void() &&> fn) {
  {
    std::lock_guard<std::mutex> lock(remote_mu_);
    posted_.push_back(std::move(fn));
    remote_work_.store(true, std::memory_order_release);
  }
  WakeUp();
}

void EventLoop::WakeUp() noexcept {
  if (wake_pending_.exchange(true, std::memory_order_acq_rel)) return;
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the loop will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.Get(), &one, sizeof(one));
}

void EventLoop::CancelRemotely(internal::Operation* op) {
  {
    std::lock_guard<std::mutex> lock(remote_mu_);
    if (op->remote_queued) return;
    op->remote_queued = true;
    remote_cancels_.push_back(op);
    remote_work_.store(true, std::memory_order_release);
  }
  WakeUp();
}

void EventLoop::ForgetRemoteCancel(internal::Operation* op) {
  std::lock_guard<std::mutex> lock(remote_mu_);
  if (!op->remote_queued) return;
  op->remote_queued = false;
  remote_cancels_.erase(
      std::find(remote_cancels_.begin(), remote_cancels_.end(), op));
}

absl::StatusOr<uint32_t> EventLoop::Register(int fd) {
  if (fd < 0) return absl::InvalidArgumentError("cannot register fd -1");
  if (static_cast<size_t>(fd) >= slots_.size()) {
    slots_.resize(std::max<size_t>(fd + 1, slots_.size() * 2));
  }
  IoSlot& slot = slots_[fd];
  if (slot.registered) {
    return absl::AlreadyExistsError(absl::StrCat("fd ", fd, " is already registered"));
  }
  const uint32_t generation = slot.generation + 1;
  if (absl::Status s = poller_.Add(fd, MakeTag(fd, generation)); !s.ok()) return s;
  slot.generation = generation;
  slot.registered = true;
  return generation;
}

void EventLoop::Unregister(int fd, uint32_t generation) noexcept {
  if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
  if (!slots_[fd].registered || slots_[fd].generation != generation) return;
  (void)poller_.Remove(fd);
  const absl::Status closed = absl::CancelledError(
      absl::StrCat("fd ", fd, " was closed while an operation was pending"));
  // Each Wake unlinks its operation from the slot before the slot goes.
  if (internal::IoOperation* op = slots_[fd].reader) op->Wake(closed, false);
  if (internal::IoOperation* op = slots_[fd].writer) op->Wake(closed, false);
  slots_[fd].registered = false;
  ++slots_[fd].generation;  // events already fetched for this fd are stale
}

void EventLoop::RunOnce(bool may_block) {
  // Poll first and run the ready queue last, so that the caller's condition
  // (BlockOn's task done, Stop()) is checked before the next blocking wait.
  std::optional<int64_t> timeout;
  if (!may_block || !ready_.Empty() ||
      stop_requested_.load(std::memory_order_acquire)) {
    timeout = 0;
  } else if (const internal::TimerNode* next = timers_.Top()) {
    timeout = std::max<int64_t>(0, next->deadline_ns - internal::MonotonicNowNs());
  }
  if (absl::Status s = poller_.Wait(timeout, events_); !s.ok()) Fatal(s);
  for (const internal::PollEvent& event : events_) Dispatch(event);
  FireTimers();
  DrainRemote();
  RunReady();
}

void EventLoop::RunReady() {
  // Only what is queued now: a task that yields in a loop cannot starve I/O.
  for (size_t n = ready_.Size(); n > 0; --n) {
    internal::ListNode* node = ready_.PopFront();
    if (node == nullptr) break;
    static_cast<internal::ReadyNode*>(node)->handle.resume();
  }
}

void EventLoop::FireTimers() {
  if (timers_.Empty()) return;
  const int64_t now = internal::MonotonicNowNs();
  while (internal::TimerNode* node = timers_.PopExpired(now)) {
    node->on_expire(node);
  }
}

void EventLoop::Dispatch(const internal::PollEvent& event) {
  if (event.tag == kWakeTag) {
    // One read takes (and zeroes) the whole counter of a non-semaphore
    // eventfd; a second would only fail with EAGAIN.
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(wake_fd_.Get(), &count, sizeof(count));
    wake_pending_.store(false, std::memory_order_release);
    return;
  }
  const int fd = static_cast<int>(event.tag & 0xffffffffu);
  const uint32_t generation = static_cast<uint32_t>(event.tag >> 32);
  const auto wake_if_done = [&](bool for_write) {
    // Looked up afresh each time: resuming a coroutine may close the fd or
    // grow slots_.
    if (static_cast<size_t>(fd) >= slots_.size()) return;
    IoSlot& slot = slots_[fd];
    if (!slot.registered || slot.generation != generation) return;
    internal::IoOperation* op = for_write ? slot.writer : slot.reader;
    if (op != nullptr && op->Attempt()) op->Wake(absl::OkStatus(), true);
  };
  if (event.events & (internal::kReadable | internal::kError)) wake_if_done(false);
  if (event.events & (internal::kWritable | internal::kError)) wake_if_done(true);
}

void EventLoop::DrainRemote() {
  // Most passes have nothing from other threads: skip the lock. A Post or
  // cancel that raced past this load also wrote the eventfd, so the next
  // pass sees it.
  if (!remote_work_.load(std::memory_order_acquire)) return;
  std::vector<absl::AnyInvocable<void() &&>> posted;
  std::vector<internal::Operation*> cancels;
  {
    std::lock_guard<std::mutex> lock(remote_mu_);
    remote_work_.store(false, std::memory_order_relaxed);
    if (posted_.empty() && remote_cancels_.empty()) return;
    posted.swap(posted_);
    cancels.swap(remote_cancels_);
    for (internal::Operation* op : cancels) op->remote_queued = false;
  }
  // No operation in `cancels` can have been destroyed since the swap: its
  // destructor runs on this thread.
  for (internal::Operation* op : cancels) op->CancelFromLoop();
  for (auto& fn : posted) std::move(fn)();
}

// --- Detached tasks ------------------------------------------------------

namespace internal {

class DetachedPromise {
 public:
  struct Coroutine {
    using promise_type = DetachedPromise;
    std::coroutine_handle<DetachedPromise> handle;
  };

  Coroutine get_return_object() noexcept {
    node_.handle = std::coroutine_handle<DetachedPromise>::from_promise(*this);
    return {std::coroutine_handle<DetachedPromise>::from_promise(*this)};
  }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  struct Final {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<DetachedPromise> me) const noexcept {
      me.destroy();
    }
    void await_resume() const noexcept {}
  };
  Final final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  [[noreturn]] void unhandled_exception() const noexcept {
    std::fputs("conet: an exception escaped a detached task\n", stderr);
    std::terminate();
  }
  ~DetachedPromise() {
    if (loop_ != nullptr) {
      loop_->RemoveDetached(&node_);
      loop_->Unschedule(&start_);
    }
  }

  void Start(EventLoop* loop) {
    loop_ = loop;
    loop->AddDetached(&node_);
    start_.handle = node_.handle;
    loop->Schedule(&start_);
  }

 private:
  EventLoop* loop_ = nullptr;
  ReadyNode node_;   // in the loop's list of detached frames
  ReadyNode start_;  // in the ready queue until the task first runs
};

namespace {
DetachedPromise::Coroutine RunDetached(Task<void> task) {
  co_await std::move(task);
}
}  // namespace

}  // namespace internal

void EventLoop::SpawnDetached(Task<void> task) {
  internal::RunDetached(std::move(task)).handle.promise().Start(this);
}

}  // namespace conet
