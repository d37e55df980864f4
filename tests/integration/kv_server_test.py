"""End-to-end tests of examples/kv_server against the real Redis tools.

redis-cli and redis-benchmark (Debian's redis-tools) drive it as they drive
Redis; raw RESP from plain sockets covers what those clients never send
(splits, pipelines, binary data, a 4 MiB value, protocol errors); and the
same conversation is replayed against Debian's redis-server, whose replies
must match byte for byte.

Usage: kv_server_test.py KV_SERVER (Bazel passes the binary's path).
"""

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

KV_SERVER = None
DEADLINE = 10.0  # seconds any single wait may take before the test fails


class Server:
    """A server process and the address from its `listening on` line."""

    def __init__(self, argv):
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self._read_line()
        if not line.startswith("listening on "):
            raise AssertionError("no listening line, got %r" % line)
        self.address = line[len("listening on "):]

    def _read_line(self):
        ready, _, _ = select.select([self.process.stdout], [], [], DEADLINE)
        if not ready:
            self.process.kill()
            raise AssertionError("server printed nothing")
        return self.process.stdout.readline().decode().strip()

    def port(self):
        return int(self.address.rsplit(":", 1)[1])

    def stop(self):
        """SIGTERM, then the exit status (bounded)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=DEADLINE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.process.stdout.close()
            self.process.stderr.close()


def start_kv(*flags):
    return Server([KV_SERVER, "--listen=127.0.0.1:0"] + list(flags))


def connect(address):
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(DEADLINE)
        sock.connect(address[len("unix:"):])
    else:
        host, port = address.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)), timeout=DEADLINE)
    return sock


class Reader:
    """Reads whole RESP2 replies from a socket, returning their raw bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.data = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed")
        self.data += chunk

    def _line(self):
        while b"\r\n" not in self.data:
            self._fill()
        line, self.data = self.data.split(b"\r\n", 1)
        return line

    def _exact(self, count):
        while len(self.data) < count:
            self._fill()
        out, self.data = self.data[:count], self.data[count:]
        return out

    def reply(self):
        line = self._line()
        kind = line[:1]
        if kind == b"$":
            length = int(line[1:])
            if length < 0:
                return line + b"\r\n"
            return line + b"\r\n" + self._exact(length + 2)
        if kind == b"*":
            parts = [line + b"\r\n"]
            for _ in range(max(int(line[1:]), 0)):
                parts.append(self.reply())
            return b"".join(parts)
        return line + b"\r\n"

    def at_eof(self):
        """True if the peer closes with nothing more sent."""
        try:
            self._fill()
        except EOFError:
            return self.data == b""
        return False


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


# One conversation, replayed against kv_server and redis-server: every
# reply must be the same bytes.
CONVERSATION = [
    command("PING"),
    command("PING", "hello"),
    command("SET", "k4", "v", "NX", "NX"),
    command("SET", "k4", "w", "XX", "XX"),
    command("SET", "k4", "x", "EX", "10", "EX", "20"),
    command("SET", "k4", "x", "PX", "10", "PX", "20000"),
    command("SET", "k4", "x", "EX", "abc", "BOGUS"),
    command("SET", "k4", "x", "EX", "0", "BOGUS"),
    command("SET", "k4", "x", "EX", "10", "PX", "10"),
    command("SET", "k4", "x", "NX", "XX"),
    command("GET", "k4"),
    b"SET inl foo\"bar\"\r\n",
    command("GET", "inl"),
    b"SET inl2 b\x0bc\r\n",
    command("GET", "inl2"),
    b"SET inl3 \"\" '\\'q'\r\n",
    command("GET", "inl3"),
    command("ECHO", b"bin\x00ary\r\n"),
    command("SET", b"k\x00\r\ney", b"v\x00al\r\nue"),
    command("GET", b"k\x00\r\ney"),
    command("GET", "missing"),
    command("SET", "n", "10"),
    command("INCR", "n"),
    command("INCR", "fresh"),
    command("SET", "s", "abc"),
    command("INCR", "s"),
    command("SET", "big", "9223372036854775807"),
    command("INCR", "big"),
    command("SET", "k2", "v", "NX"),
    command("SET", "k2", "w", "NX"),
    command("SET", "k3", "v", "XX"),
    command("SET", "k2", "x", "XX", "EX", "100"),
    command("SET", "k2", "x", "px", "100000", "xx"),
    command("SET", "k2", "x", "EX", "0"),
    command("SET", "k2", "x", "EX", "abc"),
    command("SET", "k2", "x", "EX"),
    command("SET", "k2", "x", "NX", "XX"),
    command("SET", "k2", "x", "EX", "1", "PX", "1"),
    command("SET", "k2"),
    command("GET"),
    command("GET", "a", "b"),
    command("ECHO"),
    command("EXISTS", "n", "n", "missing"),
    command("DEL", "n", "n", "missing", "k2"),
    command("EXISTS", "n"),
    command("DEL"),
    command("INCR"),
    command("NOSUCH", "a", "b"),
    command("nosuch"),
    b"PING\r\n",
    b"SET inline \"quoted value\\x41\"\r\n",
    command("GET", "inline"),
    b"\r\n",
    b"*0\r\n",
    command("PING"),
]


def converse(address, requests):
    """Sends each request on one connection; returns each reply's bytes."""
    sock = connect(address)
    reader = Reader(sock)
    replies = []
    for request in requests:
        sock.sendall(request)
        if request in (b"\r\n", b"*0\r\n"):
            continue  # no reply to an empty request
        replies.append(reader.reply())
    sock.close()
    return replies


class KvServerTest(unittest.TestCase):
    def setUp(self):
        self.server = start_kv()
        self.address = self.server.address

    def tearDown(self):
        self.assertEqual(self.server.stop(), 0)

    def redis_cli(self, *args, stdin=None):
        result = subprocess.run(
            ["redis-cli", "-p", str(self.server.port())] + list(args),
            input=stdin, capture_output=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_redis_cli(self):
        self.assertEqual(self.redis_cli("PING"), b"PONG\n")
        self.assertEqual(self.redis_cli("SET", "greeting", "hi there"), b"OK\n")
        self.assertEqual(self.redis_cli("GET", "greeting"), b"hi there\n")
        self.assertEqual(self.redis_cli("INCR", "visits"), b"1\n")
        self.assertEqual(self.redis_cli("INCR", "visits"), b"2\n")
        self.assertEqual(self.redis_cli("EXISTS", "greeting", "nope"), b"1\n")
        self.assertEqual(self.redis_cli("DEL", "greeting"), b"1\n")
        self.assertEqual(self.redis_cli("GET", "greeting"), b"\n")
        # -x reads the last argument from stdin, binary and all.
        value = bytes(range(256)) * 4
        self.assertEqual(self.redis_cli("-x", "SET", "blob", stdin=value), b"OK\n")
        sock = connect(self.address)
        sock.sendall(command("GET", "blob"))
        self.assertEqual(Reader(sock).reply(), b"$%d\r\n%s\r\n" % (len(value), value))
        sock.close()
        # An unknown command is an error; the server stays up.
        self.assertIn(b"unknown command", self.redis_cli("FLUSHALL"))
        self.assertEqual(self.redis_cli("PING"), b"PONG\n")

    def test_redis_cli_pipe_mode(self):
        # --pipe sends a stream of commands and checks every reply arrives.
        stream = b"".join(command("SET", "key:%d" % i, "value:%d" % i) for i in range(2000))
        result = subprocess.run(
            ["redis-cli", "-p", str(self.server.port()), "--pipe"],
            input=stream, capture_output=True, timeout=DEADLINE * 3)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(b"errors: 0, replies: 2000", result.stdout)
        self.assertEqual(self.redis_cli("GET", "key:1999"), b"value:1999\n")

    def test_redis_benchmark(self):
        for pipeline in ("1", "16"):
            result = subprocess.run(
                ["redis-benchmark", "-p", str(self.server.port()), "-t", "set,get,incr",
                 "-n", "6400", "-c", "20", "-P", pipeline, "-q"],
                capture_output=True, timeout=DEADLINE * 6)
            output = result.stdout + result.stderr
            self.assertEqual(result.returncode, 0, output)
            for test in (b"SET: ", b"GET: ", b"INCR: "):
                self.assertIn(test, output)
            self.assertNotIn(b"Error", output)
            self.assertNotIn(b"WARNING", output)
        # Every INCR counted once, across 20 connections and both runs (6400
        # is whole pipelines for every client: redis-benchmark sends no more).
        self.assertEqual(self.redis_cli("GET", "counter:__rand_int__"), b"12800\n")

    def test_requests_split_at_every_byte(self):
        sock = connect(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = command("SET", "split", "value") + command("GET", "split")
        for i in range(len(request)):
            sock.sendall(request[i:i + 1])
        reader = Reader(sock)
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertEqual(reader.reply(), b"$5\r\nvalue\r\n")
        sock.close()

    def test_pipelined_requests_answered_in_order(self):
        sock = connect(self.address)
        requests = b"".join(command("ECHO", "m%d" % i) for i in range(1000))
        sock.sendall(requests + b"PING\r\n")
        reader = Reader(sock)
        for i in range(1000):
            self.assertEqual(reader.reply(), b"$%d\r\nm%d\r\n" % (len(b"m%d" % i), i))
        self.assertEqual(reader.reply(), b"+PONG\r\n")
        sock.close()

    def test_four_mib_value(self):
        value = os.urandom(4 << 20)
        sock = connect(self.address)
        sock.sendall(command("SET", "large", value) + command("GET", "large"))
        reader = Reader(sock)
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertEqual(reader.reply(), b"$%d\r\n%s\r\n" % (len(value), value))
        sock.close()

    def test_protocol_errors_answer_then_close(self):
        for bad, error in [
                (b"*1\r\n:3\r\n", b"-ERR Protocol error: expected '$', got ':'\r\n"),
                (b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
                (b"*1\r\n$-5\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
                (b"SET \"open\r\n", b"-ERR Protocol error: unbalanced quotes in request\r\n"),
                (b"x" * 70000, b"-ERR Protocol error: too big inline request\r\n")]:
            sock = connect(self.address)
            sock.sendall(command("PING") + bad)
            reader = Reader(sock)
            self.assertEqual(reader.reply(), b"+PONG\r\n")
            self.assertEqual(reader.reply(), error)
            self.assertTrue(reader.at_eof(), bad[:20])
            sock.close()
        self.assertEqual(converse(self.address, [command("PING")]), [b"+PONG\r\n"])

    def test_quit(self):
        sock = connect(self.address)
        sock.sendall(command("QUIT") + command("PING"))
        reader = Reader(sock)
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertTrue(reader.at_eof())  # the PING after QUIT is not answered
        sock.close()

    def test_expiry(self):
        sock = connect(self.address)
        reader = Reader(sock)
        sock.sendall(command("SET", "soon", "v", "PX", "100") + command("SET", "later", "v", "EX", "100"))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        self.assertEqual(reader.reply(), b"+OK\r\n")
        started = time.monotonic()
        while True:  # bounded: expiry is a time, so poll for it
            sock.sendall(command("GET", "soon"))
            if reader.reply() == b"$-1\r\n":
                break
            self.assertLess(time.monotonic() - started, DEADLINE)
            time.sleep(0.02)
        self.assertGreaterEqual(time.monotonic() - started, 0.05)
        sock.sendall(command("EXISTS", "soon", "later"))
        self.assertEqual(reader.reply(), b":1\r\n")
        sock.close()


class LimitsTest(unittest.TestCase):
    def test_max_connections(self):
        server = start_kv("--max-connections=2")
        try:
            first, second = connect(server.address), connect(server.address)
            for sock in (first, second):
                sock.sendall(command("PING"))
                self.assertEqual(Reader(sock).reply(), b"+PONG\r\n")
            third = connect(server.address)
            reader = Reader(third)
            self.assertEqual(reader.reply(), b"-ERR max number of clients reached\r\n")
            self.assertTrue(reader.at_eof())
            third.close()
            first.close()
            # The place is free once the server has seen the close.
            started = time.monotonic()
            while True:
                sock = connect(server.address)
                sock.sendall(command("PING"))
                reply = Reader(sock).reply()
                sock.close()
                if reply == b"+PONG\r\n":
                    break
                self.assertEqual(reply, b"-ERR max number of clients reached\r\n")
                self.assertLess(time.monotonic() - started, DEADLINE)
                time.sleep(0.01)
            second.close()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_idle_timeout(self):
        server = start_kv("--idle-timeout=300ms")
        try:
            # An idle connection is closed after the timeout, not before.
            lone = connect(server.address)
            connected = time.monotonic()
            self.assertTrue(Reader(lone).at_eof())
            self.assertGreaterEqual(time.monotonic() - connected, 0.29)
            lone.close()
            busy, idle = connect(server.address), connect(server.address)
            started = time.monotonic()
            busy_reader = Reader(busy)
            # The busy one keeps talking past the timeout and stays open.
            while time.monotonic() - started < 0.6:
                busy.sendall(command("PING"))
                self.assertEqual(busy_reader.reply(), b"+PONG\r\n")
                time.sleep(0.05)
            self.assertTrue(Reader(idle).at_eof())
            busy.sendall(command("PING"))
            self.assertEqual(busy_reader.reply(), b"+PONG\r\n")
            busy.close()
            idle.close()
        finally:
            self.assertEqual(server.stop(), 0)

    def test_sigterm_drains_open_connections(self):
        server = start_kv("--drain-timeout=5s")
        sock = connect(server.address)
        reader = Reader(sock)
        sock.sendall(command("SET", "a", "1"))
        self.assertEqual(reader.reply(), b"+OK\r\n")
        server.process.send_signal(signal.SIGTERM)
        # New connections are refused once it stops accepting...
        started = time.monotonic()
        while True:
            try:
                probe = connect(server.address)
                probe.close()
            except ConnectionRefusedError:
                break
            self.assertLess(time.monotonic() - started, DEADLINE)
            time.sleep(0.01)
        # ...while the open one is still served, until it closes.
        sock.sendall(command("GET", "a"))
        self.assertEqual(reader.reply(), b"$1\r\n1\r\n")
        self.assertIsNone(server.process.poll())
        sock.close()
        self.assertEqual(server.process.wait(timeout=DEADLINE), 0)
        server.stop()

    def test_drain_deadline_closes_idle_connections(self):
        server = start_kv("--drain-timeout=200ms")
        sock = connect(server.address)
        sock.sendall(command("PING"))
        reader = Reader(sock)
        self.assertEqual(reader.reply(), b"+PONG\r\n")
        started = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        self.assertTrue(reader.at_eof())
        self.assertGreaterEqual(time.monotonic() - started, 0.15)
        self.assertEqual(server.process.wait(timeout=DEADLINE), 0)
        sock.close()
        server.stop()

    def test_threads_share_one_store(self):
        server = start_kv("--threads=2")
        try:
            result = subprocess.run(
                ["redis-benchmark", "-p", str(server.port()), "-t", "incr", "-n", "20000",
                 "-c", "50", "-P", "4", "-q"], capture_output=True, timeout=DEADLINE * 6)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(
                converse(server.address, [command("GET", "counter:__rand_int__")]),
                [b"$5\r\n20000\r\n"])
        finally:
            self.assertEqual(server.stop(), 0)


# Requests after which both servers answer (or not) and close: everything
# each sends before closing must be the same bytes.
CLOSING = [
    command("PING") + b"*1\r\n:3\r\n",
    b"*x\r\n",
    b"*1\r\n$-5\r\n",
    b"*3000000000\r\n",
    b"SET a it's\r\n",
    b"SET a \"open\r\n",
    b"SET a \"x\"y\r\n",
    b"x" * 70000,
    b"*1\r\n$" + b"1" * 70000,
    # A browser's request: closed unanswered, its later lines never run.
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nSET evil 1\r\n",
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nSET evil 2\r\n",
]


def until_closed(address, request):
    """Sends `request` and returns everything received until the server
    closes (a reset after unread input counts as the close)."""
    sock = connect(address)
    sock.sendall(request)
    got = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    sock.close()
    return got


class AgainstRedisTest(unittest.TestCase):
    """The same conversation against redis-server gets the same bytes."""

    def test_replies_match_redis(self):
        directory = tempfile.mkdtemp(prefix="kv_test_")
        redis_path = os.path.join(directory, "redis.sock")
        redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", redis_path, "--save", "",
             "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kv = Server([KV_SERVER, "--listen=unix:" + os.path.join(directory, "kv.sock")])
        try:
            # The socket file appears before redis-server listens on it:
            # wait until a PING is answered (bounded).
            started = time.monotonic()
            while True:
                try:
                    if converse("unix:" + redis_path, [command("PING")]) == [b"+PONG\r\n"]:
                        break
                except (FileNotFoundError, ConnectionRefusedError):
                    pass
                self.assertIsNone(redis.poll(), "redis-server exited")
                self.assertLess(time.monotonic() - started, DEADLINE)
                time.sleep(0.01)
            expected = converse("unix:" + redis_path, CONVERSATION)
            got = converse(kv.address, CONVERSATION)
            for request, want, have in zip(
                    [r for r in CONVERSATION if r not in (b"\r\n", b"*0\r\n")], expected, got):
                self.assertEqual(have, want, request)
            self.assertEqual(len(got), len(expected))
            for request in CLOSING:
                self.assertEqual(until_closed(kv.address, request),
                                 until_closed("unix:" + redis_path, request), request[:40])
            self.assertEqual(converse(kv.address, [command("EXISTS", "evil")]), [b":0\r\n"])
        finally:
            redis.terminate()
            redis.wait(timeout=DEADLINE)
            self.assertEqual(kv.stop(), 0)
            shutil.rmtree(directory)


if __name__ == "__main__":
    KV_SERVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
