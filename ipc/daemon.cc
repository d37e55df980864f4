#include "ipc/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <latch>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "net/event_loop.h"
#include "net/server.h"
#include "net/signals.h"
#include "net/timer.h"
#include "net/when_any.h"

namespace conet::ipc {
namespace {

using LoopServer = absl::AnyInvocable<Task<void>(int, std::stop_token)>;

Task<void> ServeThenCountDown(std::shared_ptr<LoopServer> serve, int index, std::stop_token stop,
                              std::shared_ptr<std::latch> served) {
  co_await (*serve)(index, std::move(stop));
  served->count_down();
}

Task<void> ThenCountDown(Task<void> task, std::shared_ptr<std::latch> done) {
  co_await std::move(task);
  done->count_down();
}

// Waits until `token` is stopped (or the awaiting task is cancelled).
Task<void> UntilStopped(std::stop_token token) {
  const Cancellation until(std::move(token));
  (void)co_await Sleep(absl::InfiniteDuration(), until);
}

// Waits until `event` is set (or the awaiting task is cancelled).
Task<void> UntilSet(AsyncEvent* event) { (void)co_await event->Wait(); }

// Waits for the next stop signal; false if the watcher failed.
Task<bool> NextSignal(SignalWatcher* watcher) {
  absl::StatusOr<int> signal = co_await watcher->Next();
  co_return signal.ok();
}

void Warn(const std::string& program, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s\n", program.c_str(), std::string(status.message()).c_str());
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(DaemonOptions options) {
  std::unique_ptr<Daemon> daemon(new Daemon(std::move(options)));
  daemon->started_uid_ = ::geteuid();
  absl::StatusOr<Notifier> notifier = Notifier::FromEnvironment();
  if (!notifier.ok()) return notifier.status();
  daemon->notifier_ = std::move(*notifier);
  absl::StatusOr<std::vector<ListenedFd>> activated = ListenFds();
  if (!activated.ok()) return activated.status();
  if (!activated->empty()) {
    if (absl::Status adopted = daemon->Adopt(std::move(*activated)); !adopted.ok()) return adopted;
  }
  if (daemon->options_.upgrade_socket.empty()) return daemon;
  absl::StatusOr<SocketAddress> upgrade = SocketAddress::Parse(daemon->options_.upgrade_socket);
  if (!upgrade.ok()) return upgrade.status();
  if (!upgrade->is_unix()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--upgrade-socket=", daemon->options_.upgrade_socket,
                     ": expected unix:PATH or unix:@NAME"));
  }
  if (absl::Status taken = daemon->TakeOver(*upgrade); !taken.ok()) return taken;
  return daemon;
}

absl::Status Daemon::Adopt(std::vector<ListenedFd> activated) {
  for (ListenedFd& listened : activated) {
    absl::Status valid = ValidateListener(listened.fd.fd(), options_.kind, listened.name);
    if (!valid.ok()) return valid;
    listeners_.push_back(std::move(listened.fd));
  }
  origin_ = "activated";
  return absl::OkStatus();
}

absl::Status Daemon::TakeOver(const SocketAddress& upgrade) {
  absl::StatusOr<std::unique_ptr<EventLoop>> loop = EventLoop::Create();
  if (!loop.ok()) return loop.status();
  const Cancellation within = Within(options_.handoff_timeout);
  absl::StatusOr<std::optional<Takeover>> takeover =
      (*loop)->BlockOn(Takeover::Begin(upgrade, within));
  if (!takeover.ok()) return takeover.status();
  if (!takeover->has_value()) return absl::OkStatus();  // nobody there: bind
  std::vector<NamedFd> fds = std::move((*takeover)->fds());
  takeover_ = std::move(**takeover);
  absl::Status adopted = AdoptHandedOver(std::move(fds));
  if (!adopted.ok()) {
    const std::string reason(adopted.message());
    (void)(*loop)->BlockOn(takeover_->Abandon(reason, within));
    takeover_.reset();
  }
  return adopted;
}

absl::Status Daemon::AdoptHandedOver(std::vector<NamedFd> fds) {
  std::vector<UniqueFd> listeners;
  for (NamedFd& named : fds) {
    if (named.name == "upgrade") {
      handed_upgrade_ = std::move(named.fd);
      continue;
    }
    if (named.name != "listen") continue;  // not ours to use: closed
    absl::Status valid = ValidateListener(named.fd.fd(), options_.kind, "listen");
    if (!valid.ok()) return valid;
    listeners.push_back(std::move(named.fd));
  }
  if (listeners.empty()) {
    return absl::FailedPreconditionError("the older instance handed over no listening socket");
  }
  // Activation gave listeners already: keep those, and close the others.
  if (listeners_.empty()) {
    listeners_ = std::move(listeners);
    origin_ = "handed over";
  }
  return absl::OkStatus();
}

std::vector<UniqueFd> Daemon::TakeListeners() { return std::move(listeners_); }

absl::StatusOr<std::vector<StreamListener>> Daemon::ListenStream(const SocketAddress& address,
                                                                 LoopGroup& group,
                                                                 const ListenOptions& options) {
  if (listeners_.empty()) return BindForEachLoop(address, group, options);
  std::vector<StreamListener> adopted;
  std::vector<UniqueFd> inherited = TakeListeners();
  for (size_t i = 0; i < inherited.size(); ++i) {
    absl::StatusOr<StreamListener> listener =
        StreamListener::Adopt(std::move(inherited[i]), options, &group.loop(i % group.size()));
    if (!listener.ok()) return listener.status();
    adopted.push_back(std::move(*listener));
  }
  return adopted;
}

const char* Daemon::origin() const { return origin_; }

absl::Status Daemon::Serve(LoopGroup& group, const std::vector<std::string>& addresses,
                           std::vector<int> listener_fds, int count, LoopServer serve) {
  if (!options_.upgrade_socket.empty()) {
    absl::StatusOr<SeqPacketListener> listener;
    if (handed_upgrade_.is_open()) {
      listener = SeqPacketListener::Adopt(std::move(handed_upgrade_), {}, &group.loop(0));
    } else {
      ListenOptions upgrade_options;
      upgrade_options.unix_mode = 0600;
      listener = SeqPacketListener::Bind(*SocketAddress::Parse(options_.upgrade_socket),
                                         upgrade_options, &group.loop(0));
    }
    if (!listener.ok()) return listener.status();
    upgrade_listener_ = std::move(*listener);
  }
  absl::StatusOr<SignalWatcher> signals = SignalWatcher::Create(StopSignals(), &group.loop(0));
  if (!signals.ok()) {
    upgrade_listener_.Close();
    return signals.status();
  }
  signals_ = std::move(*signals);
  if (absl::Status locked = LockDown(); !locked.ok()) return locked;
  auto served = std::make_shared<std::latch>(count);
  auto shared = std::make_shared<LoopServer>(std::move(serve));
  for (int i = 0; i < count; ++i) {
    group.loop(i % group.size())
        .SpawnDetached(ServeThenCountDown(shared, i, stop_.get_token(), served));
  }
  std::stop_source all_served;
  auto lifecycle_done = std::make_shared<std::latch>(1);
  group.loop(0).SpawnDetached(ThenCountDown(
      Lifecycle(addresses, std::move(listener_fds), all_served.get_token()), lifecycle_done));
  group.Start();
  const absl::Status running = ThreadsRunning();
  served->wait();
  all_served.request_stop();
  lifecycle_done->wait();
  group.Stop();
  group.Join();
  return running;
}

absl::Status Daemon::LockDown() {
  if (!options_.lock_down) return absl::OkStatus();
  absl::Status locked = notifier_.KeepConnected();
  if (locked.ok()) locked = options_.lock_down();
  if (!locked.ok()) {
    // Registered with a loop that never ran: closed here, before it goes.
    signals_.Close();
    upgrade_listener_.Close();
  }
  return locked;
}

absl::Status Daemon::ThreadsRunning() {
  absl::Status running = absl::OkStatus();
  if (options_.threads_running) running = options_.threads_running();
  if (!running.ok()) {
    start_failed_ = true;
    stop_.request_stop();
    end_drain_.request_stop();
  }
  threads_started_.Set();
  return running;
}

Task<void> Daemon::Announce(std::vector<std::string> addresses) {
  std::string last;
  for (const std::string& address : addresses) {
    if (address == last) continue;
    std::printf("listening on %s\n", address.c_str());
    last = address;
  }
  std::fflush(stdout);
  const std::string status =
      absl::StrCat("Listening on ", absl::StrJoin(addresses, ", "), " (", origin_, ")");
  absl::Status sent =
      takeover_.has_value() ? co_await notifier_.Ready(::getpid()) : co_await notifier_.Ready();
  if (sent.ok()) sent = co_await notifier_.Status(status);
  if (!sent.ok()) Warn(options_.program, sent);
  if (takeover_.has_value()) {
    const Cancellation within = Within(options_.handoff_timeout);
    absl::Status told = co_await takeover_->Ready(within);
    if (!told.ok()) Warn(options_.program, told);
    takeover_.reset();
  }
}

Task<void> Daemon::Lifecycle(std::vector<std::string> addresses, std::vector<int> listener_fds,
                             std::stop_token served) {
  (void)co_await threads_started_.Wait();
  bool ready = false;
  if (start_failed_) {
    co_await AbandonTakeover("the newer instance failed to start");
  } else {
    ready = co_await BecameReady(served);
  }
  if (ready) {
    co_await Announce(std::move(addresses));
    co_await WhenAny(RunUntilStopped(std::move(listener_fds), served), PingWatchdog(served));
  }
  // Registered with this loop: closed on it, before the loops go.
  signals_.Close();
  upgrade_listener_.Close();
}

Task<bool> Daemon::BecameReady(std::stop_token served) {
  if (!options_.wait_for_ready) co_return true;
  auto first = co_await WhenAny(UntilSet(&ready_), UntilStopped(served), NextSignal(&signals_));
  if (first.index == 0) co_return true;
  co_await AbandonTakeover("the newer instance stopped before it was ready");
  if (first.index == 2) {  // asked to stop while starting
    stop_.request_stop();
    co_await DrainUntilServed(std::move(served));
  }
  co_return false;
}

Task<void> Daemon::AbandonTakeover(std::string reason) {
  if (!takeover_.has_value()) co_return;  // the older instance goes on serving
  const Cancellation within = Within(options_.handoff_timeout);
  absl::Status told = co_await takeover_->Abandon(std::move(reason), within);
  if (!told.ok()) Warn(options_.program, told);
  takeover_.reset();
}

Task<void> Daemon::PingWatchdog(std::stop_token served) {
  const Cancellation until_served(served);
  absl::Status pinged = co_await notifier_.RunWatchdog(until_served);
  if (!pinged.ok()) Warn(options_.program, pinged);
  co_await UntilStopped(std::move(served));  // off, or failed: the rest goes on
}

Task<bool> Daemon::WaitForSuccessor(std::vector<int> listener_fds) {
  if (!upgrade_listener_.is_open()) {
    co_await UntilStopped(std::stop_token());  // until the task is cancelled
    co_return false;
  }
  std::vector<OfferedFd> offer;
  for (int fd : listener_fds) offer.push_back(OfferedFd{"listen", fd});
  offer.push_back(OfferedFd{"upgrade", upgrade_listener_.fd()});
  AnswerOptions options;
  options.timeout = options_.handoff_timeout;
  options.successor_uid = started_uid_;
  options.on_failure = [this](const absl::Status& failure) { Warn(options_.program, failure); };
  options.on_handing_over = [this](pid_t pid) {
    std::fprintf(stderr, "%s: handing over to pid %d\n", options_.program.c_str(), pid);
  };
  absl::Status handed =
      co_await AnswerSuccessors(upgrade_listener_, std::move(offer), std::move(options));
  if (handed.ok()) co_return true;
  if (absl::IsCancelled(handed)) co_return false;  // stopping
  // The upgrade socket failed: no more upgrades, but go on serving.
  Warn(options_.program, handed);
  co_await UntilStopped(std::stop_token());
  co_return false;
}

Task<void> Daemon::RunUntilStopped(std::vector<int> listener_fds, std::stop_token served) {
  auto first = co_await WhenAny(NextSignal(&signals_), WaitForSuccessor(std::move(listener_fds)));
  const bool handed_over = first.index == 1;
  if (handed_over) {
    std::fprintf(stderr, "%s: handed over; draining\n", options_.program.c_str());
  } else {
    absl::Status sent = co_await notifier_.Stopping();
    if (sent.ok()) sent = co_await notifier_.Status("Draining connections");
    if (!sent.ok()) Warn(options_.program, sent);
  }
  stop_.request_stop();
  upgrade_listener_.Close();
  co_await DrainUntilServed(std::move(served));
}

Task<void> Daemon::DrainUntilServed(std::stop_token served) {
  auto second = co_await WhenAny(NextSignal(&signals_), UntilStopped(std::move(served)));
  if (second.index == 0) end_drain_.request_stop();
}

}  // namespace conet::ipc
