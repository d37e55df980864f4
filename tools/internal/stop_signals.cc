#include "tools/internal/stop_signals.h"

#include <pthread.h>

#include <cstdio>

namespace conet::tools {

sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

sigset_t BlockStopSignals() {
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

void ServeUntilStopSignal(LoopGroup& group, const std::string& address,
                          const sigset_t& signals) {
  group.Start();
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  group.Stop();
  group.Join();
}

}  // namespace conet::tools
