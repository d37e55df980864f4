#include "net/signals.h"

#include <signal.h>

int main() {
  const sigset_t blocked = conet::BlockStopSignals();
  return sigismember(&blocked, SIGTERM) == 1 ? 0 : 1;
}
