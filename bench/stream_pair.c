#define _GNU_SOURCE /* accept4 */
#include "bench/stream_pair.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Closes `fd` if it is open. */
static void close_if_open(int fd) {
  if (fd >= 0) close(fd);
}

/* Makes `fd` non-blocking and sets TCP_NODELAY; returns 0 or -1. */
static int prepare_tcp_end(int fd) {
  const int one = 1;
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return -1;
  return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Connects a client to a listener on 127.0.0.1:0 and accepts it. */
static int make_tcp_pair(int fds[2]) {
  struct sockaddr_in address;
  socklen_t length = sizeof(address);
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int server = -1;
  memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener >= 0 && client >= 0 &&
      bind(listener, (struct sockaddr*)&address, sizeof(address)) == 0 &&
      listen(listener, 1) == 0 && getsockname(listener, (struct sockaddr*)&address, &length) == 0 &&
      connect(client, (struct sockaddr*)&address, sizeof(address)) == 0) {
    server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
  }
  close_if_open(listener);
  if (server < 0 || prepare_tcp_end(client) != 0 || prepare_tcp_end(server) != 0) {
    perror("tcp pair over 127.0.0.1");
    close_if_open(client);
    close_if_open(server);
    return -1;
  }
  fds[0] = client;
  fds[1] = server;
  return 0;
}

int make_stream_pair(const char* transport, int fds[2]) {
  if (strcmp(transport, "tcp") == 0) return make_tcp_pair(fds);
  if (strcmp(transport, "socketpair") != 0) {
    fprintf(stderr, "unknown transport \"%s\" (socketpair or tcp)\n", transport);
    return -1;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    perror("socketpair");
    return -1;
  }
  return 0;
}
