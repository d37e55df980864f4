#!/usr/bin/env python3
"""Echo throughput: conet against a plain epoll server and Boost.Asio.

Builds (-c opt) and copies the three echo servers and tools/netbench, then
for each placement (server and netbench on separate cores, then both on one
core) and each load (64-byte messages at 1, 64 and 1000 connections, 4 KiB
messages at 64), runs every server in turn, RUNS times, interleaved, and
prints the median messages/s and latency with conet's ratios.

  python3 bench/run_echo.py [--runs=3] [--duration=3s] [--csv=FILE]

Each run starts a fresh server pinned with taskset, waits for its
`listening on` line, and drives it with netbench pinned likewise.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS = [("epoll", "bench/epoll_echo"), ("conet", "examples/echo_server"),
           ("asio", "bench/asio_echo")]
LOADS = [(64, 1), (64, 64), (64, 1000), (4096, 64)]
PLACEMENTS = [("separate cores", "0", "1"), ("one core", "0", "0")]
TARGETS = ["//bench:epoll_echo", "//examples:echo_server", "//bench:asio_echo",
           "//tools:netbench", "//bench:libmalloc_counter.so"]


def build(copy_to):
    subprocess.run([os.path.join(ROOT, "tools/bazel"), "build", "-c", "opt"] + TARGETS,
                   cwd=ROOT, check=True)
    out = os.path.join(ROOT, "bazel-out/k8-opt/bin")
    for path in [p for _, p in SERVERS] + ["tools/netbench", "bench/libmalloc_counter.so"]:
        shutil.copy(os.path.join(out, path), copy_to)


def run_once(bin_dir, server, size, connections, server_cpu, client_cpu, duration):
    proc = subprocess.Popen(["taskset", "-c", server_cpu,
                             os.path.join(bin_dir, os.path.basename(server)),
                             "--listen=127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.match(r"listening on (\S+)", line)
        if not match:
            sys.exit(f"{server}: no listening line: {line!r}")
        result = subprocess.run(
            ["taskset", "-c", client_cpu, os.path.join(bin_dir, "netbench"),
             f"--target={match.group(1)}", f"--connections={connections}",
             f"--size={size}", f"--duration={duration}", "--warmup=1s"],
            capture_output=True, text=True, timeout=120)
        fields = dict(kv.split("=") for kv in result.stdout.split()[-6:])
        if result.returncode != 0 or fields.get("errors") != "0":
            sys.exit(f"{server}: netbench failed: {result.stdout} {result.stderr}")
        return {k: float(v) for k, v in fields.items()}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--csv", help="also write the medians here")
    parser.add_argument("--copy-to", help="keep the built binaries in this directory")
    parser.add_argument("--no-build", action="store_true",
                        help="use the binaries already in --copy-to")
    args = parser.parse_args()
    bin_dir = args.copy_to or tempfile.mkdtemp(prefix="conet-bench-")
    os.makedirs(bin_dir, exist_ok=True)
    if not args.no_build:
        build(bin_dir)
    rows = []
    for placement, server_cpu, client_cpu in PLACEMENTS:
        for size, connections in LOADS:
            samples = {name: [] for name, _ in SERVERS}
            for _ in range(args.runs):  # interleaved, so drift hits all alike
                for name, server in SERVERS:
                    samples[name].append(run_once(bin_dir, server, size, connections,
                                                  server_cpu, client_cpu, args.duration))
            median = {name: {k: statistics.median(s[k] for s in runs)
                             for k in ("msgs_per_sec", "p50_us", "p99_us")}
                      for name, runs in samples.items()}
            rows.append((placement, size, connections, median))
            print_row(rows[-1])
    if args.csv:
        with open(args.csv, "w") as out:
            out.write("placement,size,connections,server,msgs_per_sec,p50_us,p99_us\n")
            for placement, size, connections, median in rows:
                for name, m in median.items():
                    out.write(f"{placement},{size},{connections},{name},"
                              f"{m['msgs_per_sec']:.0f},{m['p50_us']:.1f},{m['p99_us']:.1f}\n")


def print_row(row):
    placement, size, connections, m = row
    if not getattr(print_row, "header", False):
        print(f"| placement | size | conns | epoll msgs/s | conet msgs/s | asio msgs/s "
              f"| conet/epoll | conet/asio | p50 epoll/conet/asio (us) "
              f"| p99 epoll/conet/asio (us) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
        print_row.header = True
    e, c, a = m["epoll"], m["conet"], m["asio"]
    print(f"| {placement} | {size} | {connections} | {e['msgs_per_sec']:,.0f} "
          f"| {c['msgs_per_sec']:,.0f} | {a['msgs_per_sec']:,.0f} "
          f"| {c['msgs_per_sec'] / e['msgs_per_sec']:.2f} "
          f"| {c['msgs_per_sec'] / a['msgs_per_sec']:.2f} "
          f"| {e['p50_us']:.0f} / {c['p50_us']:.0f} / {a['p50_us']:.0f} "
          f"| {e['p99_us']:.0f} / {c['p99_us']:.0f} / {a['p99_us']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
