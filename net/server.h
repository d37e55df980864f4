// File: net/server.h
//
// The accept loop every stream server needs, with the parts that make it
// safe to run: a connection cap shared by every loop, and a graceful drain
// with a deadline when the server is asked to stop.
//
//   conet::ConnectionLimiter limiter(10000);    // net/sync.h; process-wide
//   conet::ServeOptions options;
//   options.limiter = &limiter;
//   options.over_limit_reply = "-ERR max number of clients reached\r\n";
//   options.drain_timeout = absl::Seconds(10);
//   co_await conet::Serve(std::move(listener), HandleClient, options, stop);
//
// Serve runs `handler(stream)` for each connection, as a task of the loop's
// own (detached: it costs one small frame beside the handler's; an exception
// escaping a handler ends the process, as with EventLoop::SpawnDetached),
// and returns once `stop` was requested and every connection has ended. On
// the stop it
//   1. stops waiting in accept, then accepts what the kernel has already
//      queued (closing a listener resets those connections, and with
//      SO_REUSEPORT the kernel does not move them to another listener), and
//      closes the listener: new connection attempts are refused;
//   2. lets the open connections finish for up to `drain_timeout`;
//   3. then shuts down the read side (SHUT_RD) of the connections that are
//      left: their reads return what the kernel already holds, then end of
//      stream, so a handler finishes as when its peer half-closes (an echo
//      handler echoes what it read, then closes: its peer sees every byte,
//      then EOF);
//   4. after `close_grace` more, shuts down both ways (SHUT_RDWR) what is
//      still left: writes to a peer that does not read fail too, so a
//      handler ends as it does when its peer goes. Serve waits for them to
//      return. A handler that also waits on something else than its socket
//      must bound that wait itself. (Connections get no stop token: a
//      stoppable one would cost every wait in a handler a stop callback.)
// `end_drain` (a second SIGTERM, say) cuts steps 2 and 3 short: what is
// left is shut down both ways at once.
// An idle timeout is the handler's: bound each read with IdleCancellation.
#ifndef CONET_NET_SERVER_H_
#define CONET_NET_SERVER_H_

#include <signal.h>

#include <stop_token>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "net/cancellation.h"
#include "net/listen_options.h"
#include "net/loop_group.h"
#include "net/socket_address.h"
#include "net/stream_socket.h"
#include "net/sync.h"
#include "net/task.h"

namespace conet {

struct ServeOptions {
  // The cap on open connections (shared by every listener given it); null:
  // none. A connection over it is sent `over_limit_reply` and closed.
  ConnectionLimiter* limiter = nullptr;
  std::string over_limit_reply;
  // How long open connections may take to finish after the stop.
  absl::Duration drain_timeout = absl::Seconds(10);
  // After the drain's deadline, how long connections whose reads were ended
  // may take to write what they owe.
  absl::Duration close_grace = absl::Seconds(1);
  // Once requested, the drain ends at once (see above).
  std::stop_token end_drain;
};

// Serves one connection; ends when the connection is done.
using ConnectionHandler = absl::AnyInvocable<Task<void>(StreamSocket)>;

// Accepts on `listener` (from the loop it is registered with, which must
// be the current one) until `stop` is requested, then drains as above.
// `options` (and the limiter it points to) must outlive the co_await.
// Accept errors (a peer refused by uid, descriptors running out) are
// reported to `on_error` if given, and accepting goes on.
Task<void> Serve(StreamListener listener, ConnectionHandler handler, const ServeOptions& options,
                 std::stop_token stop,
                 absl::AnyInvocable<void(const absl::Status&)> on_error = nullptr);

// The Cancellation for one read of a connection that may stay idle for at
// most `idle_timeout` (zero or less: for ever).
inline Cancellation IdleCancellation(absl::Duration idle_timeout) {
  if (idle_timeout <= absl::ZeroDuration()) return Cancellation();
  return Within(idle_timeout);
}

// Runs a server on every loop of `group` until a signal: starts the loops,
// spawns `serve(index, stop)` on each, prints `listening on ADDRESS`
// (flushed) for each of `addresses`, waits for one of `signals` (blocked in
// every thread: see BlockStopSignals in net/signals.h), requests the stop,
// waits for every serve task to return (each drains: see Serve), then stops
// the loops and joins their threads.
void ServeUntilSignal(LoopGroup& group, const std::vector<std::string>& addresses,
                      const sigset_t& signals,
                      absl::AnyInvocable<Task<void>(int, std::stop_token)> serve);

// Binds one listener on `address` for each loop of `group`: TCP listeners
// share the port with SO_REUSEPORT (the first picks it when port 0 was
// asked), so the kernel spreads connections; a UNIX socket is bound once
// and its descriptor shared.
absl::StatusOr<std::vector<StreamListener>> BindForEachLoop(const SocketAddress& address,
                                                            LoopGroup& group,
                                                            ListenOptions options = {});

}  // namespace conet

#endif  // CONET_NET_SERVER_H_
