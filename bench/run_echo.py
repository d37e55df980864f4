#!/usr/bin/env python3
"""Echo throughput: conet against a plain epoll server and Boost.Asio.

Builds (-c opt) and copies the three echo servers and tools/netbench, then
for each placement (server and netbench on separate cores; both on one core;
both on one core under SCHED_BATCH, see PLACEMENTS) and each load (64-byte
messages at 1, 64 and 1000 connections, 4 KiB messages at 64), runs every
server in turn, RUNS times, interleaved, and prints the median messages/s and
latency with conet's ratios.

  python3 bench/run_echo.py [--runs=3] [--duration=3s] [--csv=FILE]
                            [--placements="one core,one core (batch)"]
                            [--client-cpus=1-3]

Each run starts a fresh server pinned with taskset, waits for its
`listening on` line, and drives it with netbench pinned likewise. It also
records, while netbench measured, how busy each side was (CPU time over
wall time, from /proc/PID/stat; a side near 1.00 per CPU it has is the
bottleneck), the server's CPU time per message (its own cost whatever the
load generator does) and the context switches of both processes per
message, printed after the main table.
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
SERVERS = [("epoll", "bench/epoll_echo"), ("conet", "examples/echo_server"),
           ("asio", "bench/asio_echo")]
LOADS = [(64, 1), (64, 64), (64, 1000), (4096, 64)]
# (label, server's CPU, netbench's CPU, scheduling policy of both).
# Sharing one core under the default policy, a server that sleeps in
# epoll_wait preempts netbench as soon as netbench's next message wakes it,
# and for stretches the two switch after every message or two. At 1000
# connections these stretches are longer for the cheaper servers: 0.26
# context switches per message (both processes) with conet and 0.23 with the
# epoll server, against 0.06 with Asio. SCHED_BATCH takes away that wake-up
# preemption: all three then see the same switches per message at each load
# (time slices at 1000 connections, 0.007; at one connection every message
# still switches, as it must), and the throughput follows what each message
# costs the two processes.
SERVER_CPU = "0"
# On a machine with more than two cores, --client-cpus gives netbench more
# than one core (a thread on each) when it runs apart from the server.
PLACEMENTS = [("separate cores", SERVER_CPU, "1", os.SCHED_OTHER),
              ("one core", SERVER_CPU, SERVER_CPU, os.SCHED_OTHER),
              ("one core (batch)", SERVER_CPU, SERVER_CPU, os.SCHED_BATCH)]
TARGETS = ["//bench:epoll_echo", "//examples:echo_server", "//bench:asio_echo",
           "//tools:netbench", "//bench:libmalloc_counter.so"]


def build(copy_to):
    subprocess.run([os.path.join(ROOT, "tools/bazel"), "build", "-c", "opt"] + TARGETS,
                   cwd=ROOT, check=True)
    out = os.path.join(ROOT, "bazel-out/k8-opt/bin")
    for path in [p for _, p in SERVERS] + ["tools/netbench", "bench/libmalloc_counter.so"]:
        shutil.copy(os.path.join(out, path), copy_to)


WARMUP_S = 1
# netbench starts its warm-up once every connection is up; the CPU samples
# start this long after the warm-up would end if connecting took no time,
# and stop this long before the measurement would, so that process start-up
# and connecting stay outside the window unless they take longer than this.
SAMPLE_MARGIN_MAX_S = 0.5

UNITS_S = {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def seconds(duration):
    """Seconds in a netbench duration such as 3s, 500ms or 1m."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if not match:
        sys.exit(f"--duration: expected e.g. 3s, 500ms or 1m, got {duration!r}")
    return float(match.group(1)) * UNITS_S[match.group(2)]


def usage(pid):
    """CPU seconds (user plus system) and context switches of process `pid`
    so far, over all its threads."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15; the split starts at field 3.
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                for line in status:
                    name, _, value = line.partition(":")
                    if name in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                        switches += int(value)
        except (FileNotFoundError, ProcessLookupError):  # the thread has ended
            # (its switches leave the total; the servers' and netbench's
            # threads all live as long as the run)
            pass
    return cpu, switches


def sample_usage(server_pid, client_pid, duration_s):
    """Per process, inside netbench's measured time: how busy it was (CPU
    time over wall time) and its context switches per second."""
    margin = min(SAMPLE_MARGIN_MAX_S, duration_s / 4)
    time.sleep(WARMUP_S + margin)
    meter = UsageMeter(server_pid, client_pid)
    time.sleep(duration_s - 2 * margin)
    return meter.read()


class UsageMeter:
    """CPU time and context switches of some processes from now on, per
    second of wall time."""

    def __init__(self, *pids):
        self.pids = pids
        self.start = time.monotonic()
        self.before = [usage(pid) for pid in pids]

    def read(self):
        wall = time.monotonic() - self.start
        rates = []
        for pid, (cpu_before, switches_before) in zip(self.pids, self.before):
            cpu, switches = usage(pid)
            rates.append(((cpu - cpu_before) / wall, (switches - switches_before) / wall))
        return rates


def cpu_list(text):
    """The CPUs in a taskset-style list such as 1, 1-3 or 1,3,5."""
    cpus = set()
    for part in text.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part.strip())
        if not match:
            sys.exit(f"not a CPU list: {text!r} (expected e.g. 1, 1-3 or 1,3,5)")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            sys.exit(f"not a CPU list: {text!r} ({first}-{last} is empty)")
        cpus.update(range(first, last + 1))
    return cpus


def start(command, cpu, policy, **popen_args):
    """Starts `command` on `cpu` under scheduling `policy` (os.SCHED_*)."""
    return subprocess.Popen(["taskset", "-c", cpu] + command,
                            preexec_fn=lambda: os.sched_setscheduler(0, policy, os.sched_param(0)),
                            **popen_args)


def run_once(bin_dir, server, size, connections, placement, duration):
    _, server_cpu, client_cpu, policy = placement
    proc = start([os.path.join(bin_dir, os.path.basename(server)), "--listen=127.0.0.1:0"],
                 server_cpu, policy, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        match = re.match(r"listening on (\S+)", line)
        if not match:
            sys.exit(f"{server}: no listening line: {line!r}")
        client = start(
            [os.path.join(bin_dir, "netbench"), f"--threads={len(cpu_list(client_cpu))}",
             f"--target={match.group(1)}", f"--connections={connections}",
             f"--size={size}", f"--duration={duration}", f"--warmup={WARMUP_S}s"],
            client_cpu, policy, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # taskset execs netbench, so client.pid is netbench's.
            server_usage, client_usage = sample_usage(proc.pid, client.pid, seconds(duration))
            stdout, stderr = client.communicate(timeout=120)
        finally:
            client.kill()  # a no-op once it has exited
            client.wait()
        fields = dict(kv.split("=") for kv in stdout.split()[-6:])
        if client.returncode != 0 or fields.get("errors") != "0":
            sys.exit(f"{server}: netbench failed: {stdout} {stderr}")
        measured = {k: float(v) for k, v in fields.items()}
        rate = measured["msgs_per_sec"]
        measured.update(server_busy=server_usage[0], client_busy=client_usage[0],
                        server_us_per_msg=server_usage[0] * 1e6 / rate,
                        switches_per_msg=(server_usage[1] + client_usage[1]) / rate)
        return measured
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def chosen_placements(names, client_cpus):
    """The PLACEMENTS named in a comma-separated list, in PLACEMENTS' order,
    with netbench on `client_cpus` when server and netbench are apart."""
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    known = [p[0] for p in PLACEMENTS]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        sys.exit(f"--placements: unknown {unknown}; known: {known}")
    cpus = cpu_list(client_cpus)
    if int(SERVER_CPU) in cpus or not cpus <= os.sched_getaffinity(0):
        sys.exit(f"--client-cpus={client_cpus}: must leave out the server's CPU "
                 f"{SERVER_CPU} and name only CPUs of {sorted(os.sched_getaffinity(0))}")
    return [(label, server_cpu, client_cpus if label == "separate cores" else client_cpu, policy)
            for label, server_cpu, client_cpu, policy in PLACEMENTS if label in wanted]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--placements", default=",".join(p[0] for p in PLACEMENTS),
                        help="comma-separated subset of: "
                             + ", ".join(p[0] for p in PLACEMENTS))
    parser.add_argument("--client-cpus", default="1",
                        help="netbench's CPUs when apart from the server (CPU 0), "
                             "e.g. 1-3 on a 4-core machine; a netbench thread runs on each")
    parser.add_argument("--csv", help="also write the medians here")
    parser.add_argument("--copy-to", help="keep the built binaries in this directory")
    parser.add_argument("--no-build", action="store_true",
                        help="use the binaries already in --copy-to")
    args = parser.parse_args()
    seconds(args.duration)  # refuse a duration netbench's runs cannot be timed by
    placements = chosen_placements(args.placements, args.client_cpus)
    bin_dir = args.copy_to or tempfile.mkdtemp(prefix="conet-bench-")
    os.makedirs(bin_dir, exist_ok=True)
    if not args.no_build:
        build(bin_dir)
    rows = []
    for placement in placements:
        for size, connections in LOADS:
            samples = {name: [] for name, _ in SERVERS}
            for _ in range(args.runs):  # interleaved, so drift hits all alike
                for name, server in SERVERS:
                    samples[name].append(run_once(bin_dir, server, size, connections,
                                                  placement, args.duration))
            median = {name: {k: statistics.median(s[k] for s in runs)
                             for k in ("msgs_per_sec", "p50_us", "p99_us",
                                       "server_busy", "client_busy", "server_us_per_msg",
                                       "switches_per_msg")}
                      for name, runs in samples.items()}
            rows.append((placement[0], size, connections, median))
            print_row(rows[-1])
    print_busy(rows)
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


def print_busy(rows):
    print("\nHow busy each core was (CPU time / wall time: server / netbench), the"
          "\nserver's CPU time per message, and context switches per message (server"
          "\nand netbench together), medians:\n")
    print("| placement | size | conns | epoll | conet | asio "
          "| server cost asio/conet | epoll/conet | switches/msg epoll / conet / asio |")
    print("|---|---:|---:|---|---|---|---:|---:|---|")
    for placement, size, connections, m in rows:
        cells = " | ".join(f"{m[name]['server_busy']:.2f} / {m[name]['client_busy']:.2f}, "
                           f"{m[name]['server_us_per_msg']:.2f} us"
                           for name, _ in SERVERS)
        cost = {name: m[name]["server_us_per_msg"] for name, _ in SERVERS}
        switches = " / ".join(f"{m[name]['switches_per_msg']:.3f}" for name, _ in SERVERS)
        print(f"| {placement} | {size} | {connections} | {cells} "
              f"| {cost['asio'] / cost['conet']:.2f} | {cost['epoll'] / cost['conet']:.2f} "
              f"| {switches} |")


if __name__ == "__main__":
    main()
