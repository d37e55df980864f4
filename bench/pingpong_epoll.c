/* The plain edge-triggered epoll loop that pingpong_conet.cc is measured
 * against: the same 64-byte echo over a SOCK_STREAM socketpair, one process,
 * one thread. Both ends are non-blocking and registered once
 * (EPOLLIN | EPOLLOUT | EPOLLET, never touched again); each end is a small
 * state machine that tries its syscall first and waits for its descriptor's
 * event only after EAGAIN, like conet's optimistic I/O. The server end is an
 * echo loop (read into 16 KiB, send it all back, read again); the client
 * sends the message, then reads exactly 64 bytes back. This is the practical
 * limit for an event loop with that structure: nothing allocates, nothing is
 * re-armed, and no handler runs without its event.
 *
 *   ./tools/bazel build -c opt //bench:pingpong_epoll
 *   bazel-bin/bench/pingpong_epoll --round-trips=100000 [--transport=tcp]
 *
 * With --transport=tcp the pair is a TCP connection over 127.0.0.1 instead.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "bench/stream_pair.h"

enum { kMessageSize = 64, kBufferSize = 16384 };

/* An endpoint's result after running until it must wait. */
enum run_result { kWaiting, kFinished, kFailed };

struct client {
  int fd;
  int receiving; /* 0: sending the message; 1: reading the echo */
  size_t offset; /* bytes of the message sent, or of the echo read */
  long done;
  long round_trips;
  char out[kMessageSize];
  char in[kMessageSize];
};

struct server {
  int fd;
  int writing; /* 0: reading; 1: sending back buffer[offset, length) */
  size_t offset;
  size_t length;
  char buffer[kBufferSize];
};

/* Returns nonzero if a failed call only means "try again when ready". */
static int would_block(void) { return errno == EAGAIN || errno == EWOULDBLOCK; }

/* Sends and receives until a call fails with EAGAIN or all round trips are
 * done. */
static enum run_result client_run(struct client* c) {
  for (;;) {
    if (!c->receiving) {
      ssize_t n = send(c->fd, c->out + c->offset, kMessageSize - c->offset, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return would_block() ? kWaiting : kFailed;
      }
      c->offset += (size_t)n;
      if (c->offset == kMessageSize) {
        c->receiving = 1;
        c->offset = 0;
      }
    } else {
      ssize_t n = recv(c->fd, c->in + c->offset, kMessageSize - c->offset, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return would_block() ? kWaiting : kFailed;
      }
      if (n == 0) return kFailed; /* the echo ended early */
      c->offset += (size_t)n;
      if (c->offset == kMessageSize) {
        c->receiving = 0;
        c->offset = 0;
        if (++c->done == c->round_trips) return kFinished;
      }
    }
  }
}

/* Reads and echoes until a call fails with EAGAIN or the peer is gone. */
static enum run_result server_run(struct server* s) {
  for (;;) {
    if (!s->writing) {
      ssize_t n = read(s->fd, s->buffer, sizeof(s->buffer));
      if (n < 0) {
        if (errno == EINTR) continue;
        return would_block() ? kWaiting : kFailed;
      }
      if (n == 0) return kFinished;
      s->writing = 1;
      s->offset = 0;
      s->length = (size_t)n;
    } else {
      ssize_t n = send(s->fd, s->buffer + s->offset, s->length - s->offset, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        return would_block() ? kWaiting : kFailed;
      }
      s->offset += (size_t)n;
      if (s->offset == s->length) s->writing = 0;
    }
  }
}

/* Reads --round-trips=N (default 100000) and --transport=socketpair|tcp
 * (default socketpair); exits 2 on a bad argument. */
static void parse_flags(int argc, char** argv, long* round_trips, const char** transport) {
  static const char kRoundTrips[] = "--round-trips=";
  static const char kTransport[] = "--transport=";
  *round_trips = 100000;
  *transport = "socketpair";
  for (int i = 1; i < argc; ++i) {
    char* end = NULL;
    if (strncmp(argv[i], kTransport, sizeof(kTransport) - 1) == 0) {
      *transport = argv[i] + sizeof(kTransport) - 1;
      continue;
    }
    if (strncmp(argv[i], kRoundTrips, sizeof(kRoundTrips) - 1) != 0) {
      fprintf(stderr, "usage: %s [--round-trips=N] [--transport=socketpair|tcp]\n", argv[0]);
      exit(2);
    }
    *round_trips = strtol(argv[i] + sizeof(kRoundTrips) - 1, &end, 10);
    if (*end != '\0' || *round_trips < 0) {
      fprintf(stderr, "bad %s\n", argv[i]);
      exit(2);
    }
  }
}

/* Registers `fd` once for both directions, edge-triggered. */
static int register_fd(int epoll_fd, int fd) {
  struct epoll_event event;
  memset(&event, 0, sizeof(event));
  event.events = EPOLLIN | EPOLLOUT | EPOLLET;
  event.data.fd = fd;
  return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
}

int main(int argc, char** argv) {
  static struct client client;
  static struct server server;
  long round_trips;
  const char* transport;
  parse_flags(argc, argv, &round_trips, &transport);
  int pair[2];
  if (make_stream_pair(transport, pair) != 0) return 1;
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0 || register_fd(epoll_fd, pair[0]) != 0 || register_fd(epoll_fd, pair[1]) != 0) {
    perror("epoll");
    return 1;
  }
  client.fd = pair[0];
  client.round_trips = round_trips;
  memset(client.out, 'x', sizeof(client.out));
  server.fd = pair[1];

  /* Both ends start by trying their first call, as conet's tasks do. */
  enum run_result client_state = round_trips == 0 ? kFinished : client_run(&client);
  enum run_result server_state = server_run(&server);
  while (client_state == kWaiting) {
    if (server_state == kFailed) break;
    struct epoll_event events[8];
    const int count = epoll_wait(epoll_fd, events, 8, -1);
    if (count < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int i = 0; i < count; ++i) {
      const uint32_t ready = events[i].events;
      const int trouble = (ready & (EPOLLERR | EPOLLHUP)) != 0;
      if (events[i].data.fd == client.fd) {
        /* Only the direction the client waits in wakes it. */
        const uint32_t wanted = client.receiving ? EPOLLIN : EPOLLOUT;
        if (client_state == kWaiting && ((ready & wanted) || trouble)) {
          client_state = client_run(&client);
        }
      } else if (server_state == kWaiting) {
        const uint32_t wanted = server.writing ? EPOLLOUT : EPOLLIN;
        if ((ready & wanted) || trouble) server_state = server_run(&server);
      }
    }
  }
  if (client_state != kFinished || client.done != round_trips ||
      (round_trips > 0 && memcmp(client.out, client.in, kMessageSize) != 0)) {
    fprintf(stderr, "failed after %ld round trips\n", client.done);
    return 1;
  }
  close(client.fd); /* the server would now read end of stream */
  close(server.fd);
  close(epoll_fd);
  printf("round_trips=%ld\n", client.done);
  return 0;
}
