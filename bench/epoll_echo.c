// bench/epoll_echo: the practical limit for an echo server on this kernel, a
// hand-written edge-triggered epoll loop in plain C that the benchmarks
// compare examples/echo_server against (bench/README.md).
//
//   epoll_echo [--listen=HOST:PORT] [--threads=N]
//
// Same command line and behaviour as examples/echo_server, TCP only: echoes
// every byte back; after the client half-closes, echoes what is left and
// closes. With --threads=N it runs N epoll loops, one per thread, each with its
// own SO_REUSEPORT listener on the same port (the first bind picks it when
// port 0 was asked). Prints `listening on ADDRESS` once it accepts
// connections; SIGINT or SIGTERM end it with exit status 0.
//
// What makes it fast, and what conet's loop is held to: each socket is
// registered once (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) and never
// touched with epoll_ctl again; I/O is tried first and waits only on EAGAIN;
// epoll_wait hands over a batch of events; a connection is one allocation
// holding its 16 KiB buffer (the size conet's echo session reads into).
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum {
  kBufferSize = 16384,  // per connection, as in examples/echo_session.cc
  kMaxEvents = 256,     // events taken per epoll_wait
  kMaxThreads = 256,
};

// One client connection: its socket and the bytes read but not yet sent
// back, buffer[sent, filled).
struct Connection {
  int fd;
  bool peer_closed;  // read returned 0: echo what is left, then close
  uint32_t sent;
  uint32_t filled;
  char buffer[kBufferSize];
};

// One loop: its epoll instance and its listener. The listener's epoll data
// is NULL; a connection's is its struct Connection.
struct Loop {
  int epoll_fd;
  int listen_fd;
  pthread_t thread;
};

static void PrintUsage(void) {
  printf(
      "usage: epoll_echo [--listen=ADDRESS] [--threads=N]\n"
      "Echoes every byte back over TCP: an edge-triggered epoll baseline.\n"
      "  --listen=ADDRESS  HOST:PORT or [IPV6]:PORT\n"
      "                    (default 127.0.0.1:7007; port 0: any free port)\n"
      "  --threads=N       epoll loops, one per thread, 1 to 256 (default 1)\n"
      "Prints \"listening on ADDRESS\" when ready; SIGINT/SIGTERM stop it.\n");
}

// Reports a bad command line the way examples/echo_server does: exit 2.
static int UsageError(const char* what, const char* arg) {
  fprintf(stderr, "epoll_echo: %s \"%s\" (try --help)\n", what, arg);
  return 2;
}

// Parses `text` as decimal digits no greater than `max` into *value.
static bool ParseDecimal(const char* text, unsigned long max, unsigned long* value) {
  if (*text == '\0') return false;
  unsigned long result = 0;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
    result = result * 10 + (unsigned long)(*p - '0');
    if (result > max) return false;
  }
  *value = result;
  return true;
}

// Parses HOST:PORT (a dotted IPv4 literal) or [IPV6]:PORT (optionally with a
// numeric %scope) into *address and *length. Names are not resolved.
static bool ParseAddress(const char* text, struct sockaddr_storage* address, socklen_t* length) {
  char host[INET6_ADDRSTRLEN + 16];
  const char* port_text;
  memset(address, 0, sizeof(*address));
  if (text[0] == '[') {
    const char* close = strchr(text, ']');
    if (close == NULL || close[1] != ':') return false;
    size_t host_length = (size_t)(close - text - 1);
    if (host_length >= sizeof(host)) return false;
    memcpy(host, text + 1, host_length);
    host[host_length] = '\0';
    port_text = close + 2;
  } else {
    const char* colon = strrchr(text, ':');
    if (colon == NULL) return false;
    size_t host_length = (size_t)(colon - text);
    if (host_length >= sizeof(host) || memchr(text, ':', host_length) != NULL) return false;
    memcpy(host, text, host_length);
    host[host_length] = '\0';
    port_text = colon + 1;
  }
  unsigned long port = 0;
  if (!ParseDecimal(port_text, 65535, &port)) return false;
  if (text[0] == '[') {
    struct sockaddr_in6* in6 = (struct sockaddr_in6*)address;
    char* percent = strchr(host, '%');
    if (percent != NULL) {
      unsigned long scope = 0;
      if (!ParseDecimal(percent + 1, UINT32_MAX, &scope)) return false;
      in6->sin6_scope_id = (uint32_t)scope;
      *percent = '\0';
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) return false;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    *length = sizeof(*in6);
  } else {
    struct sockaddr_in* in = (struct sockaddr_in*)address;
    if (inet_pton(AF_INET, host, &in->sin_addr) != 1) return false;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    *length = sizeof(*in);
  }
  return true;
}

// Formats `address` as 127.0.0.1:43125 or [::1]:43125 into `out`.
static void FormatAddress(const struct sockaddr_storage* address, char* out, size_t size) {
  char host[INET6_ADDRSTRLEN];
  if (address->ss_family == AF_INET6) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)address;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    if (in6->sin6_scope_id != 0) {
      snprintf(out, size, "[%s%%%u]:%u", host, in6->sin6_scope_id, ntohs(in6->sin6_port));
    } else {
      snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    }
  } else {
    const struct sockaddr_in* in = (const struct sockaddr_in*)address;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
  }
}

// Opens a non-blocking listener on `address` (SO_REUSEADDR, and SO_REUSEPORT
// when `reuse_port`; an IPv6 one takes IPv4 too), or returns -1 with a message
// on stderr.
static int Listen(const struct sockaddr_storage* address, socklen_t length, bool reuse_port) {
  char where[INET6_ADDRSTRLEN + 32];
  FormatAddress(address, where, sizeof(where));
  const int fd = socket(address->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(stderr, "epoll_echo: socket for %s: %s\n", where, strerror(errno));
    return -1;
  }
  const int one = 1;
  const int zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
      (address->ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0)) {
    fprintf(stderr, "epoll_echo: setsockopt on %s: %s\n", where, strerror(errno));
    close(fd);
    return -1;
  }
  if (bind(fd, (const struct sockaddr*)address, length) != 0) {
    fprintf(stderr, "epoll_echo: bind to %s: %s\n", where, strerror(errno));
    close(fd);
    return -1;
  }
  if (listen(fd, SOMAXCONN) != 0) {
    fprintf(stderr, "epoll_echo: listen on %s: %s\n", where, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static void CloseConnection(struct Connection* connection) {
  close(connection->fd);  // also removes it from the epoll set
  free(connection);
}

// Runs `connection` as far as it goes without blocking: sends what is
// pending, then reads and echoes until read or send says EAGAIN. Returns
// false when the connection is finished (or failed) and must be closed.
//
// Edge-triggered, so every call leaves the socket waiting on an EAGAIN: a
// blocked send is resumed by the next EPOLLOUT edge, a drained read by the
// next EPOLLIN (or EPOLLRDHUP) edge.
static bool Serve(struct Connection* connection) {
  const int fd = connection->fd;
  while (true) {
    while (connection->sent < connection->filled) {
      const ssize_t n = send(fd, connection->buffer + connection->sent,
                             connection->filled - connection->sent, MSG_NOSIGNAL);
      if (n >= 0) {
        connection->sent += (uint32_t)n;
      } else if (errno == EAGAIN) {
        return true;  // the rest goes on EPOLLOUT
      } else if (errno != EINTR) {
        return false;
      }
    }
    connection->sent = connection->filled = 0;
    if (connection->peer_closed) return false;  // everything echoed
    const ssize_t n = recv(fd, connection->buffer, kBufferSize, 0);
    if (n > 0) {
      connection->filled = (uint32_t)n;
    } else if (n == 0) {
      connection->peer_closed = true;
    } else if (errno == EAGAIN) {
      return true;
    } else if (errno != EINTR) {
      return false;
    }
  }
}

// Accepts every connection waiting on the loop's listener and registers each
// once, edge-triggered, for both directions.
static void AcceptAll(struct Loop* loop) {
  while (true) {
    const int fd = accept4(loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // Out of descriptors or memory: the waiting connection stays queued and
      // the next one to arrive retries (edge-triggered, so no busy loop).
      fprintf(stderr, "epoll_echo: accept4: %s\n", strerror(errno));
      return;
    }
    struct Connection* connection = malloc(sizeof(*connection));
    if (connection == NULL) {
      fprintf(stderr, "epoll_echo: out of memory for a connection\n");
      close(fd);
      continue;
    }
    connection->fd = fd;
    connection->peer_closed = false;
    connection->sent = connection->filled = 0;
    struct epoll_event event = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = connection,
    };
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      fprintf(stderr, "epoll_echo: epoll_ctl: %s\n", strerror(errno));
      CloseConnection(connection);
    }
    // No read here: the registration reports the socket at once if the
    // client's first bytes are already there.
  }
}

static void* RunLoop(void* arg) {
  struct Loop* loop = arg;
  struct epoll_event events[kMaxEvents];
  while (true) {
    const int ready = epoll_wait(loop->epoll_fd, events, kMaxEvents, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "epoll_echo: epoll_wait: %s\n", strerror(errno));
      _exit(1);
    }
    for (int i = 0; i < ready; ++i) {
      struct Connection* connection = events[i].data.ptr;
      if (connection == NULL) {
        AcceptAll(loop);
      } else if (!Serve(connection)) {
        // Each descriptor appears at most once per batch, so no later event
        // in this batch refers to the freed connection.
        CloseConnection(connection);
      }
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  const char* listen_text = "127.0.0.1:7007";
  unsigned long threads = 1;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      PrintUsage();
      return 0;
    }
  }
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (strncmp(arg, "--listen=", 9) == 0) {
      listen_text = arg + 9;
    } else if (strncmp(arg, "--threads=", 10) == 0) {
      if (!ParseDecimal(arg + 10, kMaxThreads, &threads) || threads < 1) {
        return UsageError("expected an integer from 1 to 256 in", arg);
      }
    } else {
      return UsageError("unknown or malformed argument", arg);
    }
  }
  struct sockaddr_storage address;
  socklen_t length = 0;
  if (!ParseAddress(listen_text, &address, &length)) {
    fprintf(stderr, "epoll_echo: invalid address \"%s\": expected HOST:PORT or [IPV6]:PORT\n",
            listen_text);
    return 2;
  }

  // The loops' threads inherit this mask; only sigwait below sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

  static struct Loop loops[kMaxThreads];
  const bool reuse_port = threads > 1;
  for (unsigned long i = 0; i < threads; ++i) {
    loops[i].listen_fd = Listen(&address, length, reuse_port);
    if (loops[i].listen_fd < 0) return 1;
    if (i == 0) {  // the others bind to the port the first one got
      length = sizeof(address);
      if (getsockname(loops[0].listen_fd, (struct sockaddr*)&address, &length) != 0) {
        fprintf(stderr, "epoll_echo: getsockname: %s\n", strerror(errno));
        return 1;
      }
    }
    loops[i].epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
    if (loops[i].epoll_fd < 0 ||
        epoll_ctl(loops[i].epoll_fd, EPOLL_CTL_ADD, loops[i].listen_fd, &event) != 0) {
      fprintf(stderr, "epoll_echo: epoll: %s\n", strerror(errno));
      return 1;
    }
  }
  for (unsigned long i = 0; i < threads; ++i) {
    const int error = pthread_create(&loops[i].thread, NULL, RunLoop, &loops[i]);
    if (error != 0) {
      fprintf(stderr, "epoll_echo: pthread_create: %s\n", strerror(error));
      return 1;
    }
  }
  char bound[INET6_ADDRSTRLEN + 32];
  FormatAddress(&address, bound, sizeof(bound));
  printf("listening on %s\n", bound);
  fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  // The loops hold nothing that outlives the process: end it here.
  _exit(0);
}
