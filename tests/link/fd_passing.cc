#include "ipc/fd_passing.h"

int main() { return conet::ipc::CheckSendFds(1, 254).ok() ? 1 : 0; }
