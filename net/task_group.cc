#include "net/task_group.h"

#include <utility>

namespace conet {

struct TaskGroup::Child {
  std::variant<Task<void>, Task<absl::Status>> task;
  internal::Notifier<TaskGroup, Child*> notifier;
  internal::ReadyNode start;
  EventLoop* loop = nullptr;
  ~Child() {
    if (loop != nullptr) internal::LoopAccess::Unschedule(*loop, &start);
  }
};

TaskGroup::TaskGroup() = default;

TaskGroup::~TaskGroup() {
  if (reap_loop_ != nullptr) internal::LoopAccess::Unschedule(*reap_loop_, &reap_);
  RequestStop();
  running_.clear();  // destroys each frame at its suspension point
  finished_.clear();
}

void TaskGroup::Spawn(Task<void> child) { Start(std::move(child)); }
void TaskGroup::Spawn(Task<absl::Status> child) { Start(std::move(child)); }

void TaskGroup::Start(std::variant<Task<void>, Task<absl::Status>> task) {
  Reap();
  Child& child = *running_.emplace_back(std::make_unique<Child>());
  child.task = std::move(task);
  child.notifier = internal::MakeNotifier(this, &child);
  std::coroutine_handle<> handle;
  std::visit(
      [&](auto& t) {
        t.SetStopToken(source_.get_token());
        t.handle().promise().set_continuation(child.notifier.handle());
        handle = t.handle();
      },
      child.task);
  child.loop = EventLoop::Current();
  if (child.loop == nullptr) {
    handle.resume();
    return;
  }
  child.start.handle = handle;
  internal::LoopAccess::Schedule(*child.loop, &child.start);
}

std::coroutine_handle<> TaskGroup::ChildDone(Child* child) noexcept {
  try {
    if (auto* status_task = std::get_if<Task<absl::Status>>(&child->task)) {
      absl::Status status = status_task->handle().promise().TakeResult();
      if (!status.ok() && first_error_.ok() && !first_exception_) {
        first_error_ = std::move(status);
        RequestStop();
      }
    } else {
      std::get<Task<void>>(child->task).handle().promise().TakeResult();
    }
  } catch (...) {
    if (!first_exception_ && first_error_.ok()) {
      first_exception_ = std::current_exception();
      RequestStop();
    }
  }
  // The notifier running this is still on the stack: move the child aside,
  // destroy it later.
  for (auto it = running_.begin(); it != running_.end(); ++it) {
    if (it->get() == child) {
      finished_.splice(finished_.end(), running_, it);
      break;
    }
  }
  // Without a loop (a child run to completion inside Spawn), the next
  // Spawn or Join reaps it.
  if (child->loop != nullptr) ScheduleReap(child->loop);
  if (running_.empty() && joiner_ != nullptr) {
    // Resumed from the loop, never from here: the joiner destroys finished
    // children, and this child's frame is still on the stack (at -O0 a
    // symmetric transfer is a nested call, not a tail call).
    JoinAwaiter* joiner = std::exchange(joiner_, nullptr);
    if (joiner->loop_ != nullptr) {
      internal::LoopAccess::Schedule(*joiner->loop_, &joiner->resume_);
    } else {
      return joiner->resume_.handle;
    }
  }
  return std::noop_coroutine();
}

void TaskGroup::Reap() noexcept { finished_.clear(); }

void TaskGroup::ScheduleReap(EventLoop* loop) noexcept {
  if (reap_.Linked()) return;
  if (!reaper_) {
    reaper_ = internal::MakeReapCallback(this);
    reap_.handle = reaper_.handle();
  }
  reap_loop_ = loop;
  internal::LoopAccess::Schedule(*loop, &reap_);
}

TaskGroup::JoinAwaiter TaskGroup::Join() { return JoinAwaiter(this); }

TaskGroup::JoinAwaiter::~JoinAwaiter() {
  if (loop_ != nullptr) internal::LoopAccess::Unschedule(*loop_, &resume_);
  if (group_->joiner_ == this) group_->joiner_ = nullptr;
}

void TaskGroup::JoinAwaiter::await_suspend(std::coroutine_handle<> awaiter) {
  group_->joiner_ = this;
  resume_.handle = awaiter;
  loop_ = EventLoop::Current();
  if (token_.stop_possible()) forward_.emplace(token_, ForwardStop{group_});
}

absl::Status TaskGroup::JoinAwaiter::await_resume() {
  forward_.reset();
  group_->Reap();
  if (group_->first_exception_) {
    std::rethrow_exception(std::exchange(group_->first_exception_, nullptr));
  }
  return std::exchange(group_->first_error_, absl::OkStatus());
}

}  // namespace conet
