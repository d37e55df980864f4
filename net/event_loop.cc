#include "net/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "net/internal/poller_wait.h"

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

#ifndef NDEBUG
// Debug builds keep the set of live loops, so that a socket that outlives
// its loop aborts with a message rather than writing into freed memory.
std::mutex live_loops_mu;
std::set<const EventLoop*>& LiveLoops() {
  static auto* loops = new std::set<const EventLoop*>;
  return *loops;
}
#endif

}  // namespace

namespace internal {

CurrentLoopScope::CurrentLoopScope(EventLoop* loop) : previous_(std::exchange(current_loop, loop)) {
  if (previous_ == loop) {
    // The inner pass would reuse the poller's event buffer and the list of
    // starting tasks that the outer pass is walking.
    Fatal(absl::FailedPreconditionError(
        "EventLoop::Run or BlockOn called from inside the same loop: a loop is not re-entrant"));
  }
}
CurrentLoopScope::~CurrentLoopScope() { current_loop = previous_; }

absl::StatusOr<EventLoop*> CurrentLoop(absl::string_view what) {
  EventLoop* loop = EventLoop::Current();
  if (loop == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": no EventLoop is running on this thread"));
  }
  return loop;
}

absl::StatusOr<EventLoop*> LoopOrCurrent(EventLoop* loop, absl::string_view what) {
  if (loop != nullptr) return loop;
  return CurrentLoop(what);
}

void CheckLoopAlive([[maybe_unused]] const EventLoop* loop, [[maybe_unused]] int fd) noexcept {
#ifndef NDEBUG
  std::lock_guard<std::mutex> lock(live_loops_mu);
  if (LiveLoops().count(loop) == 0) {
    Fatal(absl::FailedPreconditionError(
        absl::StrCat("fd ", fd,
                     " (an AsyncFd or a socket) is closed after its EventLoop was destroyed: "
                     "destroy every socket before the loop it is registered with")));
  }
#endif
}

// --- Operation -----------------------------------------------------------

absl::Status Operation::CheckStopped() const {
  if (cancellation_.token().stop_requested() ||
      (ambient_token_ != nullptr && ambient_token_->stop_requested())) {
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

void Operation::ArmGuards() {
  guards_ = new Guards;
  if (cancellation_.has_deadline()) {
    TimerNode& timer = guards_->deadline_timer;
    timer.deadline_ns = ToMonotonicNs(cancellation_.deadline());
    timer.on_expire = &Operation::DeadlinePassed;
    timer.context = this;
    internal::LoopAccess::Timers(*loop_).Insert(&timer);
  }
  // A token stopped already runs the callback right here; that wake is
  // deferred to the ready queue, so it is safe before we have suspended.
  if (cancellation_.token().stop_possible()) {
    guards_->stop_callback.emplace(cancellation_.token(), Guards::OnStop{this});
  }
  if (ambient_token_ != nullptr && ambient_token_->stop_possible()) {
    guards_->ambient_callback.emplace(*ambient_token_, Guards::OnStop{this});
  }
}

void Operation::DisarmDeadline() noexcept {
  internal::LoopAccess::Timers(*loop_).Remove(&guards_->deadline_timer);
}

void Operation::Wake(absl::Status status, bool resume_now) {
  if (!pending_) return;
  pending_ = false;
  if (guards_ != nullptr) DisarmDeadline();
  Unlink();
  status_ = std::move(status);
  if (resume_now) {
    ready_node.handle.resume();
  } else {
    internal::LoopAccess::Schedule(*loop_, &ready_node);
  }
}

void Operation::StopRequested() noexcept {
  if (EventLoop::Current() == loop_) {
    CancelFromLoop();
  } else {
    internal::LoopAccess::CancelRemotely(*loop_, this);
  }
}

void Operation::DeadlinePassed(TimerNode* node) {
  auto* op = static_cast<Operation*>(node->context);
  op->Wake(absl::DeadlineExceededError("deadline exceeded"), true);
}

void Operation::AbandonSlow() noexcept {
  armed_ = false;
  if (guards_ != nullptr) {
    // Destroying a stop_callback waits for a callback running on another
    // thread, so after these two lines no new cross-thread cancel can appear.
    guards_->stop_callback.reset();
    guards_->ambient_callback.reset();
    if (remote_queued) internal::LoopAccess::ForgetRemoteCancel(*loop_, this);
  }
  if (ready_node.Linked()) internal::LoopAccess::Unschedule(*loop_, &ready_node);
  if (pending_) {
    pending_ = false;
    if (guards_ != nullptr) DisarmDeadline();
    Unlink();
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
  if (!wake_fd.is_open()) return absl::ErrnoToStatus(errno, "eventfd");
  if (absl::Status s = poller->Add(wake_fd.fd(), kWakeTag); !s.ok()) return s;
  return std::unique_ptr<EventLoop>(new EventLoop(*std::move(poller), std::move(wake_fd)));
}

EventLoop::EventLoop(internal::Poller poller, UniqueFd wake_fd)
    : poller_(std::move(poller)), wake_fd_(std::move(wake_fd)) {
#ifndef NDEBUG
  std::lock_guard<std::mutex> lock(live_loops_mu);
  LiveLoops().insert(this);
#endif
}

EventLoop::~EventLoop() {
  internal::CurrentLoopScope scope(this);
  // Destroying a frame unlinks everything it awaits.
  starting_.clear();
  while (!detached_.empty()) {
    std::coroutine_handle<internal::Promise<void>> frame = detached_.back();
    detached_.pop_back();
    frame.destroy();
  }
  // Whatever is left ran as part of frames owned elsewhere (BlockOn tasks
  // are owned by their caller); posted callbacks are simply dropped.
  {
    std::lock_guard<std::mutex> lock(remote_mu_);
    posted_.clear();
  }
#ifndef NDEBUG
  // Last: the frames destroyed above close their sockets on a live loop.
  std::lock_guard<std::mutex> lock(live_loops_mu);
  LiveLoops().erase(this);
#endif
}

EventLoop* EventLoop::Current() noexcept { return current_loop; }

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
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.fd(), &one, sizeof(one));
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
  remote_cancels_.erase(std::find(remote_cancels_.begin(), remote_cancels_.end(), op));
}

absl::StatusOr<uint32_t> EventLoop::Register(int fd) {
  if (fd < 0) return absl::InvalidArgumentError("cannot register fd -1");
  if (static_cast<size_t>(fd) >= slot_count_) GrowSlots(static_cast<size_t>(fd) + 1);
  IoSlot& slot = slots_[fd];
  if (slot.registered()) {
    return absl::AlreadyExistsError(absl::StrCat("fd ", fd, " is already registered"));
  }
  const uint32_t generation = slot.generation + 1;
  slot = IoSlot{};
  slot.generation = generation;
  return generation;
}

void EventLoop::GrowSlots(size_t at_least) {
  const size_t count = std::max(at_least, slot_count_ * 2);
  auto grown = std::make_unique<IoSlot[]>(count);
  std::copy(slots_.get(), slots_.get() + slot_count_, grown.get());
  slots_ = std::move(grown);
  slot_count_ = count;
}

absl::Status EventLoop::Watch(int fd, uint32_t generation) {
  IoSlot* slot = LiveSlot(fd, generation);
  if (slot == nullptr || slot->watched) return absl::OkStatus();
  if (absl::Status s = poller_.Add(fd, MakeTag(fd, generation)); !s.ok()) return s;
  slot->watched = true;
  return absl::OkStatus();
}

void EventLoop::Unregister(int fd, uint32_t generation) noexcept {
  if (fd < 0 || static_cast<size_t>(fd) >= slot_count_) return;
  if (!slots_[fd].registered() || slots_[fd].generation != generation) return;
  if (slots_[fd].watched) (void)poller_.Remove(fd);
  const absl::Status closed =
      absl::CancelledError(absl::StrCat("fd ", fd, " was closed while an operation was pending"));
  // Each Wake unlinks its operation from the slot before the slot goes.
  if (internal::IoOperation* op = slots_[fd].reader) op->Wake(closed, false);
  if (internal::IoOperation* op = slots_[fd].writer) op->Wake(closed, false);
  ++slots_[fd].generation;  // even: unregistered; fetched events are stale
}

inline void EventLoop::CompleteIfDone(internal::IoOperation** slot) {
  internal::IoOperation* op = *slot;
  if (!op->Attempt()) return;
  *slot = nullptr;
  op->CompleteUnlinked();
}

void EventLoop::DrainWakeFd() noexcept {
  // One read takes (and zeroes) the whole counter of a non-semaphore
  // eventfd; a second would only fail with EAGAIN.
  uint64_t count;
  [[maybe_unused]] ssize_t n = ::read(wake_fd_.fd(), &count, sizeof(count));
  wake_pending_.store(false, std::memory_order_release);
}

// Inlined into RunOnce's loop over the events: it runs once per event.
[[gnu::always_inline]] inline void EventLoop::Dispatch(const internal::PollEvent& event) {
  if (event.tag == kWakeTag) [[unlikely]] {
    DrainWakeFd();
    return;
  }
  const int fd = static_cast<int>(event.tag & 0xffffffffu);
  const uint32_t generation = static_cast<uint32_t>(event.tag >> 32);
  const uint32_t events = event.events;
  IoSlot* slot = LiveSlot(fd, generation);
  if (slot == nullptr) return;  // a stale event: the fd was closed
  if (events & (internal::kReadable | internal::kError)) {
    slot->drained = false;
    if (events & internal::kReadHangup) slot->read_hangup = true;
  }
  // Edge-triggered epoll reports every ready bit, so most events carry both
  // directions while only one operation waits: check the slots first.
  if ((events & (internal::kReadable | internal::kError)) && slot->reader != nullptr) {
    CompleteIfDone(&slot->reader);
    // Resuming the reader may have closed the fd or grown slots_. It may
    // also have started a writer that waits for this very edge (a
    // Writable() after an earlier EAGAIN): so look again, whoever waited.
    slot = LiveSlot(fd, generation);
    if (slot == nullptr) return;
  }
  if ((events & (internal::kWritable | internal::kError)) && slot->writer != nullptr) {
    CompleteIfDone(&slot->writer);
  }
}

// Inlined into the two loops that call it (Run, RunUntilDone), which saves a
// call per pass.
[[gnu::always_inline]] inline void EventLoop::RunOnce() {
  // Poll first and run the ready queue last, so that the caller's condition
  // (BlockOn's task done, Stop()) is checked before the next blocking wait.
  // (A Stop() needs no zero timeout: it writes the eventfd, which ends the
  // wait, and Run checks the flag after each pass. BlockOn ignores it.)
  int64_t timeout = internal::Poller::kNoTimeout;
  if (!ready_.Empty() || !starting_.empty()) {
    timeout = 0;
  } else if (const internal::TimerNode* next = timers_.Top()) {
    timeout = std::max<int64_t>(0, next->deadline_ns - internal::MonotonicNowNs());
  }
  for (const internal::PollEvent& event : poller_.Wait(timeout)) Dispatch(event);
  FireTimers();
  // Most passes have nothing from other threads: skip the lock. A Post or
  // cancel that raced past this load also wrote the eventfd, so the next
  // pass sees it.
  if (remote_work_.load(std::memory_order_acquire)) DrainRemote();
  if (!starting_.empty()) StartDetached();
  if (!ready_.Empty()) RunReady();
}

void EventLoop::Run() {
  internal::CurrentLoopScope scope(this);
  while (!stop_requested_.exchange(false, std::memory_order_acq_rel)) {
    RunOnce();
  }
}

void EventLoop::RunUntilDone(const bool* done) {
  while (!*done) RunOnce();
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

void EventLoop::DrainRemote() {
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

void EventLoop::SpawnDetached(Task<void> task) {
  if (!task.Valid()) return;  // an empty Task: nothing to run
  std::coroutine_handle<internal::Promise<void>> frame = task.Release();
  frame.promise().set_detached(static_cast<uint32_t>(detached_.size()));
  detached_.push_back(frame);
  starting_.push_back(frame);
}

void EventLoop::StartDetached() {
  // Only those spawned so far; a task spawned by one of them starts on the
  // next pass. Each resume may append to starting_, so index, not iterate.
  const size_t count = starting_.size();
  for (size_t i = 0; i < count; ++i) {
    const std::coroutine_handle<> frame = starting_[i];  // resume may grow starting_
    frame.resume();
  }
  starting_.erase(starting_.begin(), starting_.begin() + static_cast<ptrdiff_t>(count));
}

void EventLoop::ForgetDetached(std::coroutine_handle<> frame, uint32_t index) noexcept {
  if (index >= detached_.size() || detached_[index] != frame) {
    Fatal(absl::InternalError("a detached task finished on a loop that does not hold it"));
  }
  detached_[index] = detached_.back();
  detached_[index].promise().set_detached(index);
  detached_.pop_back();
}

namespace internal {

namespace {

void FinishDetached(std::coroutine_handle<> frame, uint32_t index) noexcept {
  EventLoop* loop = EventLoop::Current();
  if (loop == nullptr) {
    Fatal(absl::InternalError("a detached task finished outside its loop"));
  }
  internal::LoopAccess::ForgetDetached(*loop, frame, index);
  frame.destroy();
}

void TerminateDetached() noexcept {
  std::fputs("conet: an exception escaped a detached task\n", stderr);
  std::terminate();
}

// Set during static initialization: no detached task exists before main.
[[maybe_unused]] const bool detached_hooks_set = [] {
  detached_hooks = DetachedHooks{&FinishDetached, &TerminateDetached};
  return true;
}();

}  // namespace

}  // namespace internal
}  // namespace conet
