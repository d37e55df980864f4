"""Times zero-downtime upgrades of a conet server with nothing else running.

Starts BINARY with --listen=127.0.0.1:0 and an upgrade socket, then ten
successors in a row with the same command line; each must print its
`listening on` line and the older one must exit 0. Prints the plain start
time and each successor's time from start to `listening on`, in ms.

Usage: python3 bench/upgrade_latency.py BINARY [EXTRA_FLAG...]
"""

import os
import subprocess
import sys
import tempfile
import time

UPGRADES = 10


def start(argv, listen):
    began = time.monotonic()
    process = subprocess.Popen(argv + ["--listen=" + listen], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    line = process.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        process.kill()
        raise SystemExit("no listening line: %r" % line)
    return process, line[len("listening on "):], 1000 * (time.monotonic() - began)


def main():
    with tempfile.TemporaryDirectory() as directory:
        argv = [sys.argv[1], "--upgrade-socket=unix:" + os.path.join(directory, "upgrade.sock"),
                "--drain-timeout=200ms", *sys.argv[2:]]
        older, address, plain = start(argv, "127.0.0.1:0")
        times = []
        for _ in range(UPGRADES):
            newer, _, took = start(argv, address)
            if older.wait(timeout=10) != 0:
                raise SystemExit("the older instance did not exit 0")
            times.append(took)
            older = newer
        older.terminate()
        older.wait(timeout=10)
    print("plain start %.1f ms; upgrades %s ms" % (plain, " ".join("%.1f" % t for t in times)))


if __name__ == "__main__":
    main()
