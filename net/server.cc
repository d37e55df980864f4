#include "net/server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <latch>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "net/event_loop.h"
#include "net/internal/intrusive_list.h"
#include "net/signals.h"
#include "net/timer.h"

namespace conet {
namespace {

// Accepts in a row before the accept loop lets other work run.
constexpr int kAcceptsPerTurn = 64;
// The most connections a stop takes from the kernel's queue (the largest
// backlog Linux keeps by default, net.core.somaxconn).
constexpr int kMostQueuedAtStop = 4096;

// A connection still running, as the drain's deadline finds it: its
// socket, and what identifies that socket should the handler have closed
// the descriptor and its number been reused.
struct LiveConnection : internal::ListNode {
  int fd = -1;
  dev_t device = 0;
  ino_t inode = 0;
  // Shuts the socket down (`how`: SHUT_RD or SHUT_RDWR) if the descriptor
  // still names it.
  void ShutDown(int how) const {
    struct stat now;
    if (::fstat(fd, &now) == 0 && now.st_dev == device && now.st_ino == inode) {
      ::shutdown(fd, how);
    }
  }
};

// What Serve and its connections share. Connections are detached tasks
// (one frame each beside the handler's, and no stop token: a stoppable one
// would cost every wait in the handler a stop callback), so they hold the
// state too, in case Serve's frame goes first.
struct Connections {
  size_t running = 0;
  AsyncEvent none_running;
  internal::IntrusiveList live;  // of LiveConnection
};

// Links a connection into the live list for as long as it runs.
class LiveScope {
 public:
  // `entry` is RunConnection's parameter, which lives in its frame.
  LiveScope(Connections& connections, LiveConnection& entry)
      : connections_(&connections), entry_(&entry) {
    connections_->live.PushBack(entry_);
  }
  ~LiveScope() { connections_->live.Remove(entry_); }

 private:
  Connections* connections_;
  LiveConnection* entry_;
};

Task<void> RunConnection(Task<void> connection, std::shared_ptr<Connections> connections,
                         LiveConnection identity,
                         [[maybe_unused]] std::optional<ConnectionLimiter::Permit> permit) {
  {
    LiveScope live(*connections, identity);
    co_await std::move(connection);
  }
  if (--connections->running == 0) connections->none_running.Set();
  // `permit` goes with the frame: the place is free once the handler ended.
}

// Tells a connection over the cap why, as far as the socket takes it at
// once, and closes it.
void Refuse(StreamSocket stream, const std::string& reply) {
  if (!reply.empty()) (void)::send(stream.fd(), reply.data(), reply.size(), MSG_NOSIGNAL);
}

using LoopServer = absl::AnyInvocable<Task<void>(int, std::stop_token)>;

Task<void> ServeThenCountDown(std::shared_ptr<LoopServer> serve, int index, std::stop_token stop,
                              std::shared_ptr<std::latch> served) {
  co_await (*serve)(index, std::move(stop));
  served->count_down();
}

// Waits until no connection runs, or `until` ends the wait. Run with a
// stop token of its own, it does not see its awaiter's.
Task<absl::Status> NoneRunning(std::shared_ptr<Connections> connections, Cancellation until) {
  if (connections->running == 0) co_return absl::OkStatus();
  connections->none_running.Reset();
  co_return co_await connections->none_running.Wait(until);
}

// Waits as NoneRunning does, whatever the awaiting task's stop token says.
Task<absl::Status> AwaitNoneRunning(std::shared_ptr<Connections> connections, Cancellation until) {
  Task<absl::Status> waiting = NoneRunning(connections, std::move(until));
  waiting.SetStopToken(std::stop_token());
  co_return co_await std::move(waiting);
}

// Shuts down (`how`) the socket of every connection still running.
// (Shutting down resumes nobody here: the list stays as it is.)
void ShutDownAll(Connections& connections, int how) {
  internal::ListNode* node = connections.live.Front();
  for (size_t i = 0; i < connections.live.Size(); ++i, node = node->next) {
    static_cast<LiveConnection*>(node)->ShutDown(how);
  }
}

// Ends the connections the drain's deadline found running: their reads see
// end of stream, and they have `options.close_grace` to write what they
// owe before their writes fail too; `options.end_drain` cuts that short.
Task<void> StopRemaining(std::shared_ptr<Connections> connections, const ServeOptions& options) {
  if (!options.end_drain.stop_requested()) {
    ShutDownAll(*connections, SHUT_RD);
    const Cancellation grace(options.end_drain, absl::Now() + options.close_grace);
    const absl::Status written = co_await AwaitNoneRunning(connections, grace);
    if (written.ok()) co_return;
  }
  ShutDownAll(*connections, SHUT_RDWR);
  const Cancellation never;
  (void)co_await AwaitNoneRunning(connections, never);
}

class Acceptance {
 public:
  Acceptance(ConnectionHandler& handler, const ServeOptions& options,
             std::shared_ptr<Connections> connections)
      : handler_(&handler), options_(&options), connections_(std::move(connections)) {}

  // Starts serving `stream`, or refuses it when the cap is reached.
  void Admit(StreamSocket stream) {
    std::optional<ConnectionLimiter::Permit> permit;
    if (options_->limiter != nullptr) {
      permit = options_->limiter->TryAcquire();
      if (!permit) return Refuse(std::move(stream), options_->over_limit_reply);
    }
    LiveConnection identity;
    identity.fd = stream.fd();
    struct stat status;
    if (::fstat(identity.fd, &status) == 0) {
      identity.device = status.st_dev;
      identity.inode = status.st_ino;
    }
    Task<void> connection =
        RunConnection((*handler_)(std::move(stream)), connections_, identity, std::move(permit));
    ++connections_->running;
    EventLoop::Current()->SpawnDetached(std::move(connection));
  }

 private:
  ConnectionHandler* handler_;
  const ServeOptions* options_;
  std::shared_ptr<Connections> connections_;
};

}  // namespace

Task<void> Serve(StreamListener listener, ConnectionHandler handler, const ServeOptions& options,
                 std::stop_token stop, absl::AnyInvocable<void(const absl::Status&)> on_error) {
  auto connections = std::make_shared<Connections>();
  Acceptance acceptance(handler, options, connections);
  const Cancellation until_stop(stop);
  for (int accepted = 1; !stop.stop_requested(); ++accepted) {
    absl::StatusOr<StreamSocket> stream = co_await listener.Accept(until_stop);
    if (stream.ok()) {
      acceptance.Admit(std::move(*stream));
      // A flood of connections never makes accept wait: let the ones
      // accepted start now and then.
      if (accepted % kAcceptsPerTurn == 0) co_await Yield();
      continue;
    }
    // Stopped (`stop`, or the awaiting task's own token), or closed: drain.
    const absl::Status& error = stream.status();
    if (absl::IsCancelled(error) || absl::IsDeadlineExceeded(error) || !listener.is_open()) break;
    if (on_error) on_error(error);
  }
  // What the kernel already accepted is served, not reset by the close; at
  // most a backlog's worth, so that a flood cannot keep the drain going.
  for (int queued_count = 0; queued_count < kMostQueuedAtStop; ++queued_count) {
    absl::StatusOr<StreamSocket> queued = listener.TryAccept();
    if (absl::IsUnavailable(queued.status())) break;
    if (queued.ok()) {
      acceptance.Admit(std::move(*queued));
      continue;
    }
    if (on_error) on_error(queued.status());
    if (!absl::IsPermissionDenied(queued.status())) break;  // a peer refused by uid: go on
  }
  listener.Close();
  const Cancellation drain(options.end_drain, absl::Now() + options.drain_timeout);
  const absl::Status in_time = co_await AwaitNoneRunning(connections, drain);
  if (!in_time.ok()) co_await StopRemaining(connections, options);
}

void ServeUntilSignal(LoopGroup& group, const std::vector<std::string>& addresses,
                      const sigset_t& signals,
                      absl::AnyInvocable<Task<void>(int, std::stop_token)> serve) {
  std::stop_source stop;
  // Shared: a loop's count_down may still be returning when wait() does.
  auto served = std::make_shared<std::latch>(group.size());
  auto shared = std::make_shared<LoopServer>(std::move(serve));
  group.SpawnOnEach([&stop, served, shared](int index) {
    return ServeThenCountDown(shared, index, stop.get_token(), served);
  });
  group.Start();
  for (const std::string& address : addresses) std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  BlockUntilSignal(signals);
  stop.request_stop();
  served->wait();
  group.Stop();
  group.Join();
}

namespace {

// SO_REUSEPORT lets a second server of the same user bind the port too,
// silently taking half the connections. Before binding with it, a bind
// without it tells whether anyone listens there already.
absl::Status CheckPortFree(const SocketAddress& address) {
  UniqueFd probe(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.is_open()) return absl::OkStatus();  // the real bind will say
  const int on = 1;
  ::setsockopt(probe.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (address.family() == AF_INET6) {
    ::setsockopt(probe.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  }
  if (::bind(probe.fd(), address.data(), address.size()) != 0 && errno == EADDRINUSE) {
    return absl::ErrnoToStatus(EADDRINUSE, absl::StrCat("bind on ", address.ToString()));
  }
  return absl::OkStatus();
}

// A duplicate of `fd` for another loop, or the error.
absl::StatusOr<UniqueFd> Duplicate(int fd) {
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy.is_open()) {
    return absl::ErrnoToStatus(errno, absl::StrCat("duplicating listener fd ", fd));
  }
  return copy;
}

}  // namespace

absl::StatusOr<std::vector<StreamListener>> BindForEachLoop(const SocketAddress& address,
                                                            LoopGroup& group,
                                                            ListenOptions options) {
  std::vector<StreamListener> listeners;
  const bool shared_port = group.size() > 1 && !address.is_unix();
  if (shared_port && !options.reuse_port && address.port() != 0) {
    if (absl::Status free = CheckPortFree(address); !free.ok()) return free;
  }
  options.reuse_port = options.reuse_port || shared_port;
  absl::StatusOr<StreamListener> first = StreamListener::Bind(address, options, &group.loop(0));
  if (!first.ok()) return first.status();
  const SocketAddress bound = first->address();
  listeners.push_back(std::move(*first));
  for (int i = 1; i < group.size(); ++i) {
    absl::StatusOr<StreamListener> next;
    if (address.is_unix()) {
      absl::StatusOr<UniqueFd> copy = Duplicate(listeners[0].fd());
      if (!copy.ok()) return copy.status();
      next = StreamListener::Adopt(std::move(*copy), options, &group.loop(i));
    } else {
      next = StreamListener::Bind(bound, options, &group.loop(i));
    }
    if (!next.ok()) return next.status();
    listeners.push_back(std::move(*next));
  }
  return listeners;
}

}  // namespace conet
