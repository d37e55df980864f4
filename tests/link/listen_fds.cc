#include "ipc/listen_fds.h"

int main() { return conet::ipc::ListenFds().ok() ? 0 : 1; }
