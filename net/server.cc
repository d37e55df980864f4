#include "net/server.h"

#include <fcntl.h>

#include <cstdio>
#include <latch>
#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "net/signals.h"
#include "net/task_group.h"
#include "net/timeout.h"

namespace conet {
namespace {

Task<void> RunConnection(ConnectionHandler* handler, StreamSocket stream,
                         [[maybe_unused]] std::optional<ConnectionLimiter::Permit> permit) {
  co_await (*handler)(std::move(stream));
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

Task<absl::Status> JoinAll(TaskGroup& group) { co_return co_await group.Join(); }

class Acceptance {
 public:
  Acceptance(ConnectionHandler& handler, const ServeOptions& options, TaskGroup& group)
      : handler_(&handler), options_(&options), group_(&group) {}

  // Starts serving `stream`, or refuses it when the cap is reached.
  void Admit(StreamSocket stream) {
    std::optional<ConnectionLimiter::Permit> permit;
    if (options_->limiter != nullptr) {
      permit = options_->limiter->TryAcquire();
      if (!permit) return Refuse(std::move(stream), options_->over_limit_reply);
    }
    group_->Spawn(RunConnection(handler_, std::move(stream), std::move(permit)));
  }

 private:
  ConnectionHandler* handler_;
  const ServeOptions* options_;
  TaskGroup* group_;
};

}  // namespace

Task<void> Serve(StreamListener listener, ConnectionHandler handler, const ServeOptions& options,
                 std::stop_token stop, absl::AnyInvocable<void(const absl::Status&)> on_error) {
  TaskGroup connections;
  Acceptance acceptance(handler, options, connections);
  const Cancellation until_stop(stop);
  while (!stop.stop_requested()) {
    absl::StatusOr<StreamSocket> stream = co_await listener.Accept(until_stop);
    if (stream.ok()) {
      acceptance.Admit(std::move(*stream));
    } else if (!stop.stop_requested() && on_error) {
      on_error(stream.status());
    }
  }
  // What the kernel already accepted is served, not reset by the close.
  while (true) {
    absl::StatusOr<StreamSocket> queued = listener.TryAccept();
    if (absl::IsUnavailable(queued.status())) break;
    if (queued.ok()) {
      acceptance.Admit(std::move(*queued));
    } else if (on_error) {
      on_error(queued.status());
      if (!absl::IsPermissionDenied(queued.status())) break;
    }
  }
  listener.Close();
  // At the deadline, WithDeadline stops the join, which stops the children.
  (void)co_await WithDeadline(JoinAll(connections), absl::Now() + options.drain_timeout);
  // A join stopped from outside still waits: nothing is left running here.
  (void)co_await connections.Join();
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

absl::StatusOr<std::vector<StreamListener>> BindForEachLoop(const SocketAddress& address,
                                                            LoopGroup& group,
                                                            ListenOptions options) {
  std::vector<StreamListener> listeners;
  options.reuse_port = options.reuse_port || (group.size() > 1 && !address.is_unix());
  absl::StatusOr<StreamListener> first = StreamListener::Bind(address, options, &group.loop(0));
  if (!first.ok()) return first.status();
  const SocketAddress bound = first->address();
  listeners.push_back(std::move(*first));
  for (int i = 1; i < group.size(); ++i) {
    absl::StatusOr<StreamListener> next =
        address.is_unix()
            ? StreamListener::Adopt(UniqueFd(::fcntl(listeners[0].fd(), F_DUPFD_CLOEXEC, 0)),
                                    options, &group.loop(i))
            : StreamListener::Bind(bound, options, &group.loop(i));
    if (!next.ok()) return next.status();
    listeners.push_back(std::move(*next));
  }
  return listeners;
}

}  // namespace conet
