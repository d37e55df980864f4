/* A connected pair of non-blocking, close-on-exec stream sockets for the
 * ping-pong programs: a UNIX socketpair, or a TCP connection over loopback
 * (127.0.0.1, TCP_NODELAY on both ends), so that one program measures both
 * transports. */
#ifndef CONET_BENCH_STREAM_PAIR_H_
#define CONET_BENCH_STREAM_PAIR_H_

#ifdef __cplusplus
extern "C" {
#endif

/* Fills fds[0] (the client end) and fds[1] (the server end). `transport` is
 * "socketpair" or "tcp". Returns 0, or -1 with a message on stderr. */
int make_stream_pair(const char* transport, int fds[2]);

#ifdef __cplusplus
}
#endif

#endif /* CONET_BENCH_STREAM_PAIR_H_ */
