#!/usr/bin/env python3
"""kv_server against redis-server, both driven by redis-benchmark.

Builds kv_server (-c opt) and copies it, then for each load (SET and GET,
50 connections, pipeline depth 1 and 16) runs redis-server and kv_server in
turn, RUNS times, interleaved, and prints the median requests/s with
kv_server's ratio to Redis. Both servers run one thread, pinned with the
benchmark to one core under SCHED_BATCH (the placement that shows a
server's own cost on a 2-core machine); then kv_server --threads=2 is run
on both cores with the benchmark unpinned, for the record.

  python3 bench/run_kv.py [--runs=3] [--requests=200000] [--csv=FILE]

Redis runs as Debian ships it, without persistence (--save "" --appendonly
no), as kv_server has none.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADS = [("SET", 1), ("GET", 1), ("SET", 16), ("GET", 16)]
CONNECTIONS = 50
CPU = "0"


def build(copy_to):
    subprocess.run([os.path.join(ROOT, "tools/bazel"), "build", "-c", "opt",
                    "//examples:kv_server"], cwd=ROOT, check=True)
    path = os.path.join(copy_to, "kv_server")
    # bazel-out/k8-opt, not bazel-bin: another build may move that link.
    shutil.copy(os.path.join(ROOT, "bazel-out/k8-opt/bin/examples/kv_server"), path)
    return path


def batch(argv, cpu):
    """argv pinned to `cpu` (None: any) under SCHED_BATCH."""
    prefix = ["chrt", "-b", "0"]
    if cpu is not None:
        prefix += ["taskset", "-c", cpu]
    return prefix + argv


def start_redis(directory, cpu):
    port = free_port()
    process = subprocess.Popen(
        batch(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", directory, "--io-threads", "1"], cpu),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True).stdout \
            != b"PONG\n":
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    return process, port


def start_kv(binary, cpu, threads):
    process = subprocess.Popen(
        batch([binary, "--listen=127.0.0.1:0", "--threads=%d" % threads], cpu),
        stdout=subprocess.PIPE)
    line = process.stdout.readline().decode()
    match = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not match:
        raise RuntimeError("kv_server printed %r" % line)
    return process, int(match.group(1))


def free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def benchmark(port, test, pipeline, requests, cpu):
    argv = ["redis-benchmark", "-p", str(port), "-t", test.lower(), "-n", str(requests),
            "-c", str(CONNECTIONS), "-P", str(pipeline), "-q", "--csv"]
    result = subprocess.run(batch(argv, cpu), capture_output=True, check=True, timeout=300)
    for line in result.stdout.decode().splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if fields[0] == test:
            return float(fields[1])
    raise RuntimeError("no %s line in %r" % (test, result.stdout))


def stop(process):
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def run_one(name, binary, directory, test, pipeline, requests, cpu, threads=1):
    if name == "redis":
        process, port = start_redis(directory, cpu)
    else:
        process, port = start_kv(binary, cpu, threads)
    try:
        return benchmark(port, test, pipeline, requests, cpu)
    finally:
        stop(process)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200000)
    parser.add_argument("--csv")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="conet_kv_bench_")
    try:
        binary = build(directory)
        rows = []
        print("one core, SCHED_BATCH, %d connections, %d requests per run, median of %d"
              % (CONNECTIONS, args.requests, args.runs))
        print("%-6s %5s %14s %14s %7s" % ("test", "depth", "redis req/s", "kv req/s", "ratio"))
        for test, pipeline in LOADS:
            results = {"redis": [], "kv": []}
            requests = args.requests * (4 if pipeline > 1 else 1)
            for _ in range(args.runs):
                for name in ("redis", "kv"):
                    results[name].append(
                        run_one(name, binary, directory, test, pipeline, requests, CPU))
            redis, kv = statistics.median(results["redis"]), statistics.median(results["kv"])
            rows.append((test, pipeline, redis, kv))
            print("%-6s %5d %14.0f %14.0f %6.2fx" % (test, pipeline, redis, kv, kv / redis))
            sys.stdout.flush()
        print("kv_server --threads=2, both cores, redis-benchmark unpinned (reported)")
        for test, pipeline in LOADS:
            requests = args.requests * (4 if pipeline > 1 else 1)
            values = [run_one("kv", binary, directory, test, pipeline, requests, None, threads=2)
                      for _ in range(args.runs)]
            print("%-6s %5d %14s %14.0f" % (test, pipeline, "", statistics.median(values)))
        if args.csv:
            with open(args.csv, "w") as out:
                out.write("test,depth,redis,kv\n")
                for row in rows:
                    out.write("%s,%d,%.0f,%.0f\n" % row)
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
