#!/usr/bin/env python3
"""Heap and resident memory per idle connection, for each echo server.

Starts each server with bench/libmalloc_counter.so preloaded, warms it up,
then holds CONNECTIONS idle connections (connected, accepted, nothing sent)
and reports, per connection: heap bytes and blocks the server holds (from
the counter, SIGUSR1), heap bytes beyond the application's own read buffer,
and resident memory (VmRSS).

  python3 bench/idle_memory.py --bin-dir=DIR [--connections=10000]

DIR holds echo_server, epoll_echo, asio_echo and libmalloc_counter.so
(bench/run_echo.py --copy-to=DIR builds and copies them).
"""
import argparse
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time

# The read buffer each server's echo session owns (16 KiB in all three).
APP_BUFFER_BYTES = 16384
SERVERS = ["epoll_echo", "echo_server", "asio_echo"]


def start(binary, preload):
    env = dict(os.environ, LD_PRELOAD=preload)
    proc = subprocess.Popen([binary, "--listen=127.0.0.1:0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    line = proc.stdout.readline()
    match = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        sys.exit(f"{binary}: no listening line: {line!r}")
    return proc, int(match.group(1))


def heap(proc):
    """Asks the counter for live bytes/blocks (it answers on stderr)."""
    proc.send_signal(signal.SIGUSR1)
    line = proc.stderr.readline()
    match = re.match(r"live_bytes=(-?\d+) live_blocks=(-?\d+)", line)
    if not match:
        sys.exit(f"no heap report: {line!r}")
    return int(match.group(1)), int(match.group(2))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(pid, timeout=10.0):
    """Waits (bounded) until the server's descriptor count has not changed
    for 200 ms, and returns it."""
    deadline = time.monotonic() + timeout
    count, since = open_fds(pid), time.monotonic()
    while time.monotonic() - since < 0.2:
        if time.monotonic() > deadline:
            sys.exit(f"server {pid}: descriptor count never settled")
        time.sleep(0.02)
        now = open_fds(pid)
        if now != count:
            count, since = now, time.monotonic()
    return count


def wait_for_fds(pid, count, timeout=30.0):
    """Waits (bounded) until the server holds at least `count` descriptors."""
    deadline = time.monotonic() + timeout
    while open_fds(pid) < count:
        if time.monotonic() > deadline:
            sys.exit(f"server {pid} did not accept every connection in {timeout}s")
        time.sleep(0.05)


def measure(binary, preload, connections):
    proc, port = start(binary, preload)
    try:
        # Warm-up: a few connections with a round trip, closed again, so
        # one-time allocations (loop tables, first frames) are not counted.
        for _ in range(50):
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"x")
                s.recv(1)
        # The server closes them (and may still be opening descriptors of
        # its own, such as a signalfd, after its `listening on` line).
        base_fds = settled_fds(proc.pid)
        base_bytes, base_blocks = heap(proc)
        base_rss = rss_kib(proc.pid)
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
        wait_for_fds(proc.pid, base_fds + connections)
        # Accepted sessions start from the loop's ready queue at once; give
        # the last few a moment to reach their first read.
        time.sleep(0.2)
        bytes_, blocks = heap(proc)
        rss = rss_kib(proc.pid)
        for s in held:
            s.close()
        per_bytes = (bytes_ - base_bytes) / connections
        return {
            "heap_bytes": per_bytes,
            "blocks": (blocks - base_blocks) / connections,
            "beyond_buffer": per_bytes - APP_BUFFER_BYTES,
            "rss_bytes": (rss - base_rss) * 1024 / connections,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated subset of " + ",".join(SERVERS))
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = args.connections + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    preload = os.path.join(args.bin_dir, "libmalloc_counter.so")
    print(f"{'server':12} {'heap B/conn':>12} {'blocks/conn':>12} "
          f"{'beyond 16K buffer':>18} {'RSS B/conn':>11}")
    for name in args.servers.split(","):
        r = measure(os.path.join(args.bin_dir, name), preload, args.connections)
        print(f"{name:12} {r['heap_bytes']:12.0f} {r['blocks']:12.2f} "
              f"{r['beyond_buffer']:18.0f} {r['rss_bytes']:11.0f}")


if __name__ == "__main__":
    main()
