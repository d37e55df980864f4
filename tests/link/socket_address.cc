#include "net/socket_address.h"

int main() { return conet::SocketAddress::Parse("127.0.0.1:0").ok() ? 0 : 1; }
