#!/usr/bin/env python3
"""TLS echo: conet's echo_server --cert/--key against Boost.Asio's ssl::stream.

Builds (-c opt) examples/echo_server, bench/asio_tls_echo and tools/netbench,
then for each load runs both servers in turn, RUNS times interleaved, server
and load generator on one core under SCHED_BATCH, and prints the medians and
conet's ratio:

  - echo throughput: netbench --tls, 64 connections, 64 B and 4 KiB messages;
  - new handshakes per second: `openssl s_time -new` (OpenSSL's own client:
    connect, full handshake, close), one connection at a time; and the
    server's own CPU time per handshake (from /proc/PID/stat), which the
    client's share of the core does not blur.

Both servers use the same certificate (ECDSA P-256, tests/testdata/tls) and
the clients run with OPENSSL_CONF=bench/tls_client.cnf, which offers TLS 1.3
with TLS_AES_128_GCM_SHA256 alone; `openssl s_client -brief` checks what
each server settled on before the runs.

  python3 bench/run_tls.py [--runs=5] [--duration=3s] [--no-build]
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "bazel-out/k8-opt/bin")
CERTS = os.path.join(ROOT, "tests/testdata/tls")
CLIENT_ENV = dict(os.environ, OPENSSL_CONF=os.path.join(ROOT, "bench/tls_client.cnf"))
CPU = "0"
SERVERS = {
    "conet": [os.path.join(BIN, "examples/echo_server")],
    "asio": [os.path.join(BIN, "bench/asio_tls_echo")],
}
LOADS = [(64, 64), (4096, 64)]


def batch(argv, **popen_args):
    """`argv` on CPU under SCHED_BATCH."""
    return subprocess.Popen(
        ["taskset", "-c", CPU] + argv,
        preexec_fn=lambda: os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0)),
        **popen_args)


class Server:
    def __init__(self, name):
        self.process = batch(SERVERS[name] + [
            "--listen=127.0.0.1:0", "--cert=" + os.path.join(CERTS, "server.pem"),
            "--key=" + os.path.join(CERTS, "server.key")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        match = re.match(r"listening on (\S+)", line)
        if not match:
            sys.exit(f"{name}: no listening line: {line!r} {self.process.stderr.read()}")
        self.address = match.group(1)

    def cpu_seconds(self):
        """User plus system CPU time the server has used so far."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        self.process.communicate(timeout=30)


def suite(name):
    """What a client offering only TLS_AES_128_GCM_SHA256 gets from `name`."""
    with Server(name) as server:
        brief = subprocess.run(
            ["openssl", "s_client", "-connect", server.address, "-brief",
             "-CAfile", os.path.join(CERTS, "ca.pem")],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, env=CLIENT_ENV,
            timeout=30)
        found = dict(re.findall(r"^(Protocol version|Ciphersuite|Signature type): (\S+)",
                                brief.stderr, re.M))
        return ", ".join(f"{k} {v}" for k, v in found.items())


def echo_rate(name, size, connections, duration):
    with Server(name) as server:
        client = batch([os.path.join(BIN, "tools/netbench"), f"--target={server.address}",
                        "--tls", "--ca=" + os.path.join(CERTS, "ca.pem"),
                        f"--connections={connections}", f"--size={size}",
                        f"--duration={duration}", "--warmup=1s"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=CLIENT_ENV)
        stdout, stderr = client.communicate(timeout=120)
        fields = dict(kv.split("=") for kv in stdout.split()[-6:])
        if client.returncode != 0 or fields.get("errors") != "0":
            sys.exit(f"netbench against {name} failed: {stdout} {stderr}")
        return float(fields["msgs_per_sec"])


def handshake_rate(name, seconds):
    """New handshakes per second, and the server's CPU microseconds for each."""
    with Server(name) as server:
        cpu_before = server.cpu_seconds()
        client = batch(["openssl", "s_time", "-connect", server.address, "-new",
                        "-time", str(seconds)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=CLIENT_ENV)
        stdout, stderr = client.communicate(timeout=seconds + 60)
        cpu = server.cpu_seconds() - cpu_before
        match = re.search(r"(\d+) connections in ([\d.]+) real seconds", stdout)
        if not match:
            sys.exit(f"s_time against {name}: {stdout} {stderr}")
        connections = int(match.group(1))
        handshake_rate.cpu_us[name].append(cpu * 1e6 / connections)
        return connections / float(match.group(2))


handshake_rate.cpu_us = {name: [] for name in SERVERS}


def compare(label, measure, runs):
    rates = {name: [] for name in SERVERS}
    for _ in range(runs):
        for name in SERVERS:
            rates[name].append(measure(name))
    conet = statistics.median(rates["conet"])
    asio = statistics.median(rates["asio"])
    print(f"{label}: conet {conet:,.0f}/s, asio {asio:,.0f}/s, ratio {conet / asio:.3f} "
          f"(runs: conet {sorted(int(r) for r in rates['conet'])}, "
          f"asio {sorted(int(r) for r in rates['asio'])})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", default="3s")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if not args.no_build:
        subprocess.run([os.path.join(ROOT, "tools/bazel"), "build", "-c", "opt",
                        "//examples:echo_server", "//bench:asio_tls_echo", "//tools:netbench"],
                       cwd=ROOT, check=True)
    for name in SERVERS:
        print(f"{name}: {suite(name)}")
    seconds = max(1, int(re.sub(r"s$", "", args.duration)))
    for size, connections in LOADS:
        compare(f"echo {size} B x {connections} connections (msgs)",
                lambda name: echo_rate(name, size, connections, args.duration), args.runs)
    compare("new handshakes (s_time -new)", lambda name: handshake_rate(name, seconds), args.runs)
    cpu = {name: statistics.median(us) for name, us in handshake_rate.cpu_us.items()}
    print(f"server CPU per handshake: conet {cpu['conet']:.0f} us, asio {cpu['asio']:.0f} us, "
          f"asio/conet {cpu['asio'] / cpu['conet']:.3f}")


if __name__ == "__main__":
    main()
