#!/usr/bin/env python3
"""privsep_server's echo throughput with its worker sandboxed against not.

Builds (-c opt) privsep_server and tools/netbench, then for each load (64 B
and 4 KiB messages, 64 connections) runs privsep_server with
--sandbox=best-effort and with --sandbox=off in turn, RUNS times
interleaved, server and netbench on one core under SCHED_BATCH, and prints
the median messages/s of each and the ratio (the target is at least 0.97).

  python3 bench/run_privsep.py [--runs=5] [--duration=3s] [--no-build]

Run it as root, so that the worker really drops to nobody and every layer
of the sandbox applies; its report line is printed once per mode.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bazel-out/k8-opt/bin")
MODES = ["off", "best-effort"]
LOADS = [(64, 64), (4096, 64)]
CPU = "0"


def batch(argv, **popen_args):
    """`argv` on CPU under SCHED_BATCH."""
    return subprocess.Popen(
        ["taskset", "-c", CPU] + argv,
        preexec_fn=lambda: os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0)),
        **popen_args)


def run_once(mode, size, connections, duration, log):
    """Returns netbench's msgs_per_sec and the worker's sandbox line."""
    server = batch([os.path.join(BIN, "examples/privsep_server"), "--listen=127.0.0.1:0",
                    "--log=" + log, "--sandbox=" + mode],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        match = re.match(r"listening on (\S+)", line)
        if not match:
            sys.exit(f"privsep_server --sandbox={mode}: no listening line: {line!r}")
        client = batch([os.path.join(BIN, "tools/netbench"), f"--target={match.group(1)}",
                        f"--connections={connections}", f"--size={size}",
                        f"--duration={duration}", "--warmup=1s"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stdout, stderr = client.communicate(timeout=120)
        fields = dict(kv.split("=") for kv in stdout.split()[-6:])
        if client.returncode != 0 or fields.get("errors") != "0":
            sys.exit(f"netbench failed: {stdout} {stderr}")
        return float(fields["msgs_per_sec"])
    finally:
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=20)
        sandbox = [l for l in errors.splitlines() if "sandbox:" in l]
        run_once.report[mode] = sandbox[0] if sandbox else "(no sandbox line)"


run_once.report = {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run([os.path.join(ROOT, "tools/bazel"), "build", "-c", "opt",
                        "//examples:privsep_server", "//tools:netbench"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory() as directory:
        log = os.path.join(directory, "privsep.log")
        for size, connections in LOADS:
            rates = {mode: [] for mode in MODES}
            for _ in range(args.runs):
                for mode in MODES:
                    rates[mode].append(run_once(mode, size, connections, args.duration, log))
                    os.truncate(log, 0)
            off = statistics.median(rates["off"])
            on = statistics.median(rates["best-effort"])
            print(f"{size} B x {connections} connections: off {off:,.0f} msgs/s, "
                  f"best-effort {on:,.0f} msgs/s, ratio {on / off:.3f} "
                  f"(runs: off {sorted(int(r) for r in rates['off'])}, "
                  f"best-effort {sorted(int(r) for r in rates['best-effort'])})")
    for mode in MODES:
        print(f"--sandbox={mode}: {run_once.report[mode]}")


if __name__ == "__main__":
    main()
