// File: net/signals.h
//
// How a server stops: SIGINT or SIGTERM (conet's programs then exit 0). main() blocks both
// before starting any thread, so that only the place that waits for them (sigwait, or a signalfd)
// sees them; a server then runs until one arrives:
//
//   const sigset_t stop = conet::BlockStopSignals();
//   ... create the LoopGroup, bind, SpawnOnEach ...
//   conet::ServeUntilStopSignal(*group, bound_address, stop);
//   return 0;
//
// A single-loop program races its work against WaitForStopSignal() instead.
#ifndef CONET_NET_SIGNALS_H_
#define CONET_NET_SIGNALS_H_

#include <signal.h>

#include <string>

#include "absl/status/status.h"
#include "net/loop_group.h"
#include "net/task.h"

namespace conet {

// Returns {SIGINT, SIGTERM}.
sigset_t StopSignals();

// Blocks the stop signals in the calling thread (threads started later
// inherit the mask) and returns them.
sigset_t BlockStopSignals();

// Starts `group`, prints `listening on ADDRESS` (flushed), waits for one of
// `signals`, then stops the loops and joins their threads.
void ServeUntilStopSignal(LoopGroup& group, const std::string& address, const sigset_t& signals);

// Waits on the current loop, through a signalfd, until SIGINT or SIGTERM
// (blocked with BlockStopSignals) arrives: for single-loop programs that
// race their work against a stop request with WhenAny. co_await yields OK
// when a signal came, or why the wait failed (or was cancelled).
Task<absl::Status> WaitForStopSignal();

}  // namespace conet

#endif  // CONET_NET_SIGNALS_H_
