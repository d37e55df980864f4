#include "net/internal/offload.h"

#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"

namespace conet::internal {

bool Offload::await_suspend(std::coroutine_handle<> handle) {
  absl::StatusOr<EventLoop*> current = CurrentLoop("Offload");
  if (!current.ok()) {
    status() = current.status();
    return false;
  }
  EventLoop* loop = *current;
  link_ = std::make_shared<Link>();
  link_->op = this;
  link_->loop = loop;
  try {
    std::thread([job = std::move(job_), link = link_]() mutable {
      std::move(job)();
      Finished(link);
    }).detach();
  } catch (const std::system_error& error) {
    link_->op = nullptr;
    status() = absl::ResourceExhaustedError(
        absl::StrCat("cannot start a thread for a blocking call: ", error.what()));
    return false;
  }
  Suspend(*loop, handle);
  return true;
}

void Offload::Finished(const std::shared_ptr<Link>& link) {
  std::lock_guard<std::mutex> lock(link->mu);
  if (link->op == nullptr) return;  // the waiter gave up; nobody to tell
  // The waiter clears `op` under `mu` before it goes away, so the loop is
  // alive while we post to it.
  link->loop->Post([link] {
    Offload* op;
    {
      std::lock_guard<std::mutex> relock(link->mu);
      op = link->op;
    }
    if (op != nullptr) op->Wake(absl::OkStatus(), /*resume_now=*/true);
  });
}

void Offload::Unlink() noexcept {
  if (link_ == nullptr) return;
  std::lock_guard<std::mutex> lock(link_->mu);
  link_->op = nullptr;
}

}  // namespace conet::internal
