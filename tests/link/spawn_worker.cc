#include "ipc/spawn_worker.h"

int main() { return conet::ipc::SelfExecutable().empty() ? 1 : 0; }
