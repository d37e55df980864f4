"""End-to-end tests of the daemon life cycle of echo_server, kv_server,
fd_broker and privsep_server.

Socket activation through Debian's systemd-socket-activate, readiness and
watchdog seen by a notify receiver of the test's own (a path and an
abstract socket), graceful drain on SIGTERM, and zero-downtime upgrades
under continuous load, with hostile successors.

Usage: lifecycle_test.py ECHO_SERVER KV_SERVER FD_BROKER PRIVSEP_SERVER
(Bazel passes the paths).
"""

import os
import pwd
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

ECHO_SERVER = None
KV_SERVER = None
FD_BROKER = None
PRIVSEP_SERVER = None
LOGS = tempfile.mkdtemp()  # privsep_server's connection logs
DEADLINE = 10.0  # seconds any single wait may take before the test fails


def privsep(*flags, log="privsep.log"):
    """privsep_server's command line, its log in a directory of the test's."""
    return [PRIVSEP_SERVER, "--log=" + os.path.join(LOGS, log), *flags]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A server process; `address` is its `listening on` line's address."""

    def __init__(self, argv, env=None, wait_line=True):
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.address = None
        if wait_line:
            self.wait_line()

    def wait_line(self):
        line = read_line(self.process.stdout)
        if not line.startswith("listening on "):
            self.process.kill()
            raise AssertionError("no listening line, got %r; stderr %r" %
                                 (line, self.process.stderr.read()))
        self.address = line[len("listening on "):]
        self.listening_after = time.monotonic() - self.started
        return self.address

    def port(self):
        return int(self.address.rsplit(":", 1)[1])

    def wait(self):
        try:
            return self.process.wait(timeout=DEADLINE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            if not self.process.stderr.closed:
                self.captured = self.process.stderr.read().decode(errors="replace")
                self.process.stderr.close()
                self.process.stdout.close()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait()

    def stderr(self):
        """What it wrote to stderr (once it has exited)."""
        self.wait()
        return self.captured


def read_line(stream):
    ready, _, _ = select.select([stream], [], [], DEADLINE)
    if not ready:
        raise AssertionError("nothing printed within %ss" % DEADLINE)
    return stream.readline().decode().strip()


def echo_once(port, payload=b"ping", timeout=DEADLINE):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def wait_refused(where):
    """Waits until connecting to `where` (a port on 127.0.0.1, or the path
    of a seqpacket socket) is refused (bounded)."""
    give_up = time.monotonic() + DEADLINE
    while time.monotonic() < give_up:
        try:
            if isinstance(where, int):
                socket.create_connection(("127.0.0.1", where), timeout=1).close()
            else:
                seqpacket_connect(where).close()
        except (FileNotFoundError, ConnectionRefusedError):
            return
        except TimeoutError:
            pass  # not refused: a full backlog nobody accepts from any more
        time.sleep(0.005)  # a poll interval, not a wait for a condition
    raise AssertionError("%s still accepts" % where)


def assert_eof_at_deadline(test, server, s):
    """After SIGTERM, idle `s` sees end of stream once a drain of 300ms is
    over."""
    stopped_at = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    test.assertEqual(s.recv(100), b"")
    test.assertGreaterEqual(time.monotonic() - stopped_at, 0.25)


class NotifyReceiver:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, name):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if name.startswith("@"):
            self.socket.bind("\0" + name[1:])
        else:
            self.socket.bind(name)
        self.name = name

    def next(self, timeout=DEADLINE):
        ready, _, _ = select.select([self.socket], [], [], timeout)
        if not ready:
            return None
        return self.socket.recv(4096).decode()

    def until(self, wanted):
        """Returns the messages up to and including one holding `wanted`."""
        seen = []
        give_up = time.monotonic() + DEADLINE
        while time.monotonic() < give_up:
            message = self.next(give_up - time.monotonic())
            if message is None:
                break
            seen.append(message)
            if wanted in message.split("\n"):
                return seen
        raise AssertionError("no %s; saw %r" % (wanted, seen))

    def close(self):
        self.socket.close()


class SocketActivationTest(unittest.TestCase):

    def activate(self, server, extra=()):
        """`server` (a path, or a command line that needs no --listen) under
        systemd-socket-activate."""
        port = free_port()
        argv = [server, "--listen=127.0.0.1:1"] if isinstance(server, str) else server
        process = subprocess.Popen(
            ["systemd-socket-activate", *extra, "-l", "127.0.0.1:%d" % port, *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return process, port

    def connect_when_listening(self, port):
        give_up = time.monotonic() + DEADLINE
        while True:
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
            except ConnectionRefusedError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.005)  # systemd-socket-activate not bound yet

    def serves_inherited(self, server, request, reply):
        """`server` under systemd-socket-activate answers `request` with
        `reply` on the inherited socket, and says it listens there."""
        process, port = self.activate(server)
        try:
            with self.connect_when_listening(port) as s:
                s.sendall(request)
                self.assertEqual(s.recv(100), reply)
            self.assertEqual(read_line(process.stdout), "listening on 127.0.0.1:%d" % port)
        finally:
            assert_stops_cleanly(self, process)

    def test_echo_server_serves_the_inherited_stream_socket(self):
        self.serves_inherited(ECHO_SERVER, b"activated", b"activated")

    def test_kv_server_serves_the_inherited_stream_socket(self):
        self.serves_inherited(KV_SERVER, b"PING\r\n", b"+PONG\r\n")

    def test_privsep_server_serves_the_inherited_stream_socket(self):
        self.serves_inherited(privsep(), b"activated", b"activated")

    def test_a_datagram_socket_is_refused_with_exit_1_naming_it(self):
        self.refuses_a_datagram_socket(ECHO_SERVER)

    def test_privsep_server_refuses_a_datagram_socket_naming_it(self):
        self.refuses_a_datagram_socket(privsep())

    def refuses_a_datagram_socket(self, server):
        process, port = self.activate(server, ["-d"])

        def send_datagram():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"x", ("127.0.0.1", port))

        # systemd-socket-activate starts the server on the first datagram.
        assert_refuses_inherited(self, process, send_datagram, "SOCK_DGRAM")


def assert_stops_cleanly(test, process):
    """SIGTERM makes `process` (under systemd-socket-activate) exit 0."""
    process.send_signal(signal.SIGTERM)
    test.assertEqual(process.wait(timeout=DEADLINE), 0)
    process.stdout.close()
    process.stderr.close()


def assert_refuses_inherited(test, process, trigger, wrong_type):
    """`process` (a server under systemd-socket-activate, started by what
    `trigger()` sends, called until it exits) exits 1 naming descriptor 3
    as a `wrong_type` socket."""
    try:
        give_up = time.monotonic() + DEADLINE
        while process.poll() is None and time.monotonic() < give_up:
            trigger()
            try:
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
        test.assertEqual(process.wait(timeout=DEADLINE), 1)
        error = process.stderr.read().decode()
        test.assertIn("descriptor 3", error)
        test.assertIn(wrong_type, error)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


class SystemdUnitTest(unittest.TestCase):
    """The units the README gives, as systemd itself reads them."""

    def test_the_echo_server_units_verify(self):
        units = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                             "examples", "systemd")
        with tempfile.TemporaryDirectory() as directory:
            for name in ("echo_server.socket", "echo_server.service"):
                with open(os.path.join(units, name)) as source:
                    text = source.read().replace("/usr/local/bin/echo_server",
                                                 os.path.abspath(ECHO_SERVER))
                with open(os.path.join(directory, name), "w") as unit:
                    unit.write(text)
            verified = subprocess.run(
                ["systemd-analyze", "verify", "--man=no",
                 os.path.join(directory, "echo_server.socket"),
                 os.path.join(directory, "echo_server.service")],
                capture_output=True, timeout=60)
            self.assertEqual(verified.returncode, 0, verified.stderr)
            self.assertEqual(verified.stderr.decode().strip(), "")

    def test_a_named_socket_as_the_unit_passes_it(self):
        port = free_port()
        process = subprocess.Popen(
            ["systemd-socket-activate", "--fdname=echo", "-l", "127.0.0.1:%d" % port,
             ECHO_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            give_up = time.monotonic() + DEADLINE
            while True:
                try:
                    got = echo_once(port, b"named")
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > give_up:
                        raise
                    time.sleep(0.005)  # not bound yet
            self.assertEqual(got, b"named")
        finally:
            assert_stops_cleanly(self, process)


class NotifyTest(unittest.TestCase):

    def run_with_receiver(self, name, argv=None):
        receiver = NotifyReceiver(name)
        env = dict(os.environ, NOTIFY_SOCKET=name, WATCHDOG_USEC="200000")
        argv = argv or [ECHO_SERVER, "--listen=127.0.0.1:0"]
        server = Server(argv, env=env, wait_line=False)
        try:
            ready = receiver.until("READY=1")
            # The line was printed before READY=1 was sent.
            line_ready, _, _ = select.select([server.process.stdout], [], [], 0)
            self.assertTrue(line_ready, "READY=1 came before the listening line")
            server.wait_line()
            self.assertNotIn("MAINPID=", "".join(ready))
            status = receiver.until("WATCHDOG=1")
            self.assertTrue(any(m.startswith("STATUS=Listening on 127.0.0.1:")
                                for m in ready + status), ready + status)
            # Pings every 100 ms: count them over half a second.
            pings = 0
            give_up = time.monotonic() + 0.5
            while time.monotonic() < give_up:
                message = receiver.next(give_up - time.monotonic())
                if message == "WATCHDOG=1":
                    pings += 1
            self.assertGreaterEqual(pings, 3)
            self.assertLessEqual(pings, 7)
            server.process.send_signal(signal.SIGTERM)
            receiver.until("STOPPING=1")
            self.assertEqual(server.wait(), 0)
        finally:
            receiver.close()
            if server.process.poll() is None:
                server.process.kill()

    def test_a_path_notify_socket(self):
        with tempfile.TemporaryDirectory() as directory:
            self.run_with_receiver(os.path.join(directory, "notify"))

    def test_an_abstract_notify_socket(self):
        self.run_with_receiver("@conet-lifecycle-notify-%d" % os.getpid())

    def test_privsep_server_is_ready_once_its_worker_serves(self):
        self.run_with_receiver("@conet-lifecycle-privsep-notify-%d" % os.getpid(),
                               privsep("--listen=127.0.0.1:0"))


class DrainTest(unittest.TestCase):

    def server(self, drain_timeout):
        return Server([ECHO_SERVER, "--listen=127.0.0.1:0", "--drain-timeout=" + drain_timeout])

    def test_an_open_connection_is_served_after_sigterm_and_new_ones_refused(self):
        server = self.server("30s")
        with socket.create_connection(("127.0.0.1", server.port()), timeout=DEADLINE) as s:
            s.sendall(b"before")
            self.assertEqual(s.recv(100), b"before")
            server.process.send_signal(signal.SIGTERM)
            wait_refused(server.port())
            s.sendall(b"during")
            self.assertEqual(s.recv(100), b"during")
            self.assertIsNone(server.process.poll())
            closed_at = time.monotonic()
        # It exits as soon as the last connection closed.
        self.assertEqual(server.wait(), 0)
        self.assertLess(time.monotonic() - closed_at, 2.0)

    def test_an_idle_connection_sees_eof_at_the_deadline(self):
        server = self.server("300ms")
        with socket.create_connection(("127.0.0.1", server.port()), timeout=DEADLINE) as s:
            s.sendall(b"idle")
            self.assertEqual(s.recv(100), b"idle")
            assert_eof_at_deadline(self, server, s)
        self.assertEqual(server.wait(), 0)

    def test_a_second_sigterm_ends_the_drain_at_once(self):
        server = self.server("60s")
        with socket.create_connection(("127.0.0.1", server.port()), timeout=DEADLINE) as s:
            self.assertEqual(echo_once(server.port()), b"ping")
            server.process.send_signal(signal.SIGTERM)
            wait_refused(server.port())
            server.process.send_signal(signal.SIGTERM)
            self.assertEqual(s.recv(100), b"")
        self.assertEqual(server.wait(), 0)


class PrivsepDrainTest(DrainTest):
    """The same, where the worker serves and the monitor gets the signals."""

    def server(self, drain_timeout):
        return Server(privsep("--listen=127.0.0.1:0", "--drain-timeout=" + drain_timeout))


class Load:
    """Clients looping connect/send/receive/close, and long-lived ones."""

    def __init__(self, port, loopers=2, long_lived=2):
        self.port = port
        self.stop = threading.Event()
        self.failures = []
        self.requests = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop) for _ in range(loopers)]
        self.threads += [threading.Thread(target=self.long_lived) for _ in range(long_lived)]
        for thread in self.threads:
            thread.start()

    def fail(self, what):
        with self.lock:
            self.failures.append(what)

    def loop(self):
        n = 0
        while not self.stop.is_set():
            payload = b"short-%d" % n
            n += 1
            try:
                got = echo_once(self.port, payload)
                if got != payload:
                    self.fail("short: got %r for %r" % (got, payload))
            except OSError as error:
                self.fail("short: %r" % error)
            with self.lock:
                self.requests += 1

    def long_lived(self):
        """One connection for as long as the server keeps it; at a drain's
        deadline it sees every byte echoed, then EOF, and reconnects."""
        n = 0
        while not self.stop.is_set():
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE)
            except OSError as error:
                self.fail("long: connect %r" % error)
                continue
            with s:
                while not self.stop.is_set():
                    payload = b"long-%d" % n
                    n += 1
                    try:
                        s.sendall(payload)
                    except (BrokenPipeError, ConnectionResetError) as error:
                        self.fail("long: send %r" % error)
                        break
                    got = b""
                    try:
                        while len(got) < len(payload):
                            chunk = s.recv(4096)
                            if not chunk:
                                break
                            got += chunk
                    except OSError as error:
                        self.fail("long: recv %r" % error)
                        break
                    if got == b"":
                        break  # EOF before this message was read: send it again
                    if got != payload:
                        self.fail("long: got %r for %r" % (got, payload))
                        break
                    with self.lock:
                        self.requests += 1

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=DEADLINE)


class UpgradeTest(unittest.TestCase):

    def upgrades(self, binary, count, extra=(), check=None):
        directory = tempfile.mkdtemp()
        upgrade = "unix:" + os.path.join(directory, "upgrade.sock")
        first = Server([binary, "--listen=127.0.0.1:0", "--upgrade-socket=" + upgrade,
                        "--drain-timeout=500ms", *extra])
        argv = [binary, "--listen=" + first.address, "--upgrade-socket=" + upgrade,
                "--drain-timeout=500ms", *extra]
        load = Load(first.port()) if check is None else check(first.port())
        older, retired, latencies = first, [], []
        try:
            for _ in range(count):
                newer = Server(argv)
                self.assertEqual(newer.address, first.address)
                latencies.append(newer.listening_after)
                retired.append(older)
                older = newer
            for server in retired:
                self.assertEqual(server.wait(), 0, server.stderr())
        finally:
            load.finish()
            self.assertEqual(older.stop(), 0)
        self.assertEqual(load.failures, [])
        self.assertGreater(load.requests, count)
        latencies.sort()
        print("%s: %d upgrades, %d requests, 0 failed; successor listening after "
              "p50 %.1f ms, max %.1f ms" % (os.path.basename(binary), count, load.requests,
                                            1000 * latencies[len(latencies) // 2],
                                            1000 * latencies[-1]), file=sys.stderr)

    def test_twenty_upgrades_of_echo_server_under_load(self):
        self.upgrades(ECHO_SERVER, 20)

    def test_twenty_upgrades_of_echo_server_with_two_loops(self):
        self.upgrades(ECHO_SERVER, 20, ["--threads=2"])

    def test_an_upgrade_of_kv_server_under_load(self):
        self.upgrades(KV_SERVER, 1, check=KvLoad)

    def test_upgrades_of_privsep_server_under_load(self):
        log = os.path.join(LOGS, "upgrades.log")
        self.upgrades(PRIVSEP_SERVER, 5, ["--log=" + log])
        # Every worker logged the connections it served.
        with open(log) as lines:
            self.assertGreater(len(lines.readlines()), 5)


class KvLoad(Load):
    """PING over fresh connections."""

    def __init__(self, port):
        super().__init__(port, loopers=2, long_lived=0)

    def loop(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=DEADLINE) as s:
                    s.sendall(b"PING\r\n")
                    got = s.recv(100)
                    if got != b"+PONG\r\n":
                        self.fail("got %r" % got)
            except OSError as error:
                self.fail(repr(error))
            with self.lock:
                self.requests += 1


def fake_successor(address, then_ready=False):
    """Connects to the upgrade socket as a successor that dies after it got
    the descriptors. Returns the older instance's answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(DEADLINE)
        s.connect(address)
        try:
            s.send(b"UPGRADE %d" % os.getpid())
        except OSError:
            pass
        message, fds, _, _ = socket.recv_fds(s, 4096, 16)
        for fd in fds:
            os.close(fd)
        return message.decode()


class HostileSuccessorTest(unittest.TestCase):

    def test_a_successor_dying_mid_handoff_leaves_the_older_serving(self):
        name = "conet-lifecycle-dies-%d" % os.getpid()
        server = Server([ECHO_SERVER, "--listen=127.0.0.1:0", "--upgrade-socket=unix:@" + name])
        try:
            answer = fake_successor("\0" + name)
            self.assertTrue(answer.startswith("HANDOFF listen"), answer)
            self.assertEqual(echo_once(server.port()), b"ping")
            self.assertIsNone(server.process.poll())
            # And it still hands over to a real successor afterwards.
            newer = Server([ECHO_SERVER, "--listen=" + server.address,
                            "--upgrade-socket=unix:@" + name])
            self.assertEqual(server.wait(), 0)
            self.assertEqual(echo_once(newer.port()), b"ping")
            self.assertEqual(newer.stop(), 0)
        finally:
            if server.process.poll() is None:
                server.stop()

    def test_a_successor_of_another_uid_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to become nobody")
        name = "conet-lifecycle-uid-%d" % os.getpid()
        server = Server([ECHO_SERVER, "--listen=127.0.0.1:0", "--upgrade-socket=unix:@" + name])
        nobody = pwd.getpwnam("nobody")
        try:
            # Debian's interpreter: nobody may not be able to reach another.
            child = subprocess.run(
                ["/usr/bin/python3", "-c",
                 "import socket,sys\n"
                 "s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\n"
                 "s.settimeout(10)\n"
                 "s.connect('\\0%s')\n"
                 "s.send(b'UPGRADE 1')\n"
                 "m,fds,_,_=socket.recv_fds(s,4096,16)\n"
                 "print(m.decode(), len(fds))\n" % name],
                user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                capture_output=True, timeout=DEADLINE)
            self.assertEqual(child.stdout.decode().strip(), "ERR permission denied 0",
                             child.stderr)
            self.assertEqual(echo_once(server.port()), b"ping")
            self.assertIsNone(server.process.poll())
        finally:
            self.assertEqual(server.stop(), 0)
            self.assertIn("uid %d" % nobody.pw_uid, server.stderr())


class PrivsepHostileSuccessorTest(unittest.TestCase):
    """privsep_server successors that fail after the descriptors reached
    them: the older instance keeps serving, and hands over later."""

    def setUp(self):
        self.upgrade = "unix:@conet-lifecycle-privsep-%d-%d" % (os.getpid(), id(self))
        self.older = Server(privsep("--listen=127.0.0.1:0", "--upgrade-socket=" + self.upgrade))
        self.argv = privsep("--listen=" + self.older.address,
                            "--upgrade-socket=" + self.upgrade)

    def tearDown(self):
        if self.older.process.poll() is None:
            self.older.stop()

    def assert_older_serves_and_hands_over_later(self):
        self.assertEqual(echo_once(self.older.port()), b"ping")
        self.assertIsNone(self.older.process.poll())
        newer = Server(self.argv)
        self.assertEqual(self.older.wait(), 0, self.older.stderr())
        self.assertEqual(echo_once(newer.port()), b"ping")
        self.assertEqual(newer.stop(), 0)

    def test_a_successor_whose_worker_fails_leaves_the_older_serving(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: only root's worker changes user")
        failing = subprocess.run(self.argv + ["--user=conet-no-such-user"],
                                 capture_output=True, timeout=DEADLINE)
        self.assertEqual(failing.returncode, 1, failing.stderr)
        self.assertEqual(failing.stdout, b"")  # it never said it listened
        self.assertIn(b'no user \"conet-no-such-user\"', failing.stderr)
        self.assert_older_serves_and_hands_over_later()

    def test_a_successor_killed_mid_handoff_leaves_the_older_serving(self):
        newer = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # The older says so just before it sends the descriptors; the
            # newer then still has to start its worker, which has to say
            # READY, before it could take over: stopped at once, it has not.
            line = read_line(self.older.process.stderr)
            while line.startswith("privsep_server worker: sandbox: "):  # from its start
                line = read_line(self.older.process.stderr)
            os.kill(newer.pid, signal.SIGSTOP)
            self.assertEqual(line, "privsep_server: handing over to pid %d" % newer.pid)
            listening, _, _ = select.select([newer.stdout], [], [], 0)
            self.assertFalse(listening, "the successor got ready before it was stopped")
            newer.kill()
            newer.wait(timeout=DEADLINE)
        finally:
            if newer.poll() is None:
                newer.kill()
                newer.wait()
            newer.stdout.close()
            newer.stderr.close()
        self.assert_older_serves_and_hands_over_later()


def seqpacket_connect(path, retry=False):
    """A SOCK_SEQPACKET client of `path`; with `retry`, waits (bounded) for
    the socket to appear and accept."""
    give_up = time.monotonic() + DEADLINE
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.settimeout(DEADLINE)
        try:
            s.connect(path)
            return s
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if not retry or time.monotonic() > give_up:
                raise
            time.sleep(0.005)  # not bound yet


def broker_open(s, name):
    """Sends `OPEN name` on `s`; returns the reply and the content of the
    descriptors it came with (closed)."""
    s.send(b"OPEN " + name.encode())
    message, fds, _, _ = socket.recv_fds(s, 4096, 4)
    contents = []
    for fd in fds:
        with os.fdopen(fd, "rb") as attached:
            contents.append(attached.read())
    return message, contents


class FdBrokerLifecycleTest(unittest.TestCase):
    """fd_broker's SOCK_SEQPACKET listener under the same life cycle."""

    CONTENT = b"brokered content\n"

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.root = self.directory.name
        # The broker becomes nobody: a root anyone may read, as a real one is.
        os.chmod(self.root, 0o755)
        with open(os.path.join(self.root, "f"), "wb") as f:
            f.write(self.CONTENT)
        os.chmod(os.path.join(self.root, "f"), 0o644)

    def tearDown(self):
        self.directory.cleanup()

    def assert_opens(self, s):
        self.assertEqual(broker_open(s, "f"), (b"OK", [self.CONTENT]))

    def test_serves_the_inherited_seqpacket_socket(self):
        path = os.path.join(self.root, "b.sock")
        process = subprocess.Popen(
            ["systemd-socket-activate", "--seqpacket", "-l", path, FD_BROKER,
             "--listen=unix:" + os.path.join(self.root, "ignored.sock"),
             "--root=" + self.root],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            with seqpacket_connect(path, retry=True) as s:
                self.assert_opens(s)
            self.assertEqual(read_line(process.stdout), "listening on unix:" + path)
            self.assertFalse(os.path.exists(os.path.join(self.root, "ignored.sock")))
        finally:
            assert_stops_cleanly(self, process)

    def test_an_inherited_stream_socket_is_refused_with_exit_1_naming_it(self):
        path = os.path.join(self.root, "b.sock")
        process = subprocess.Popen(
            ["systemd-socket-activate", "-l", path, FD_BROKER,
             "--listen=unix:" + os.path.join(self.root, "ignored.sock"),
             "--root=" + self.root],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def connect_stream():
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(path)
                except (FileNotFoundError, ConnectionRefusedError):
                    pass  # not bound yet, or gone

        # systemd-socket-activate starts the broker on the first connection.
        assert_refuses_inherited(self, process, connect_stream, "SOCK_STREAM")

    def serving_a_client(self, drain_timeout):
        """A broker with `drain_timeout`, its socket's path, and a client it
        has answered."""
        path = os.path.join(self.root, "b.sock")
        server = Server([FD_BROKER, "--listen=unix:" + path, "--root=" + self.root,
                         "--drain-timeout=" + drain_timeout])
        client = seqpacket_connect(path)
        self.assert_opens(client)
        return server, path, client

    def test_an_open_client_is_served_after_sigterm_and_new_ones_refused(self):
        server, path, client = self.serving_a_client("30s")
        with client as s:
            server.process.send_signal(signal.SIGTERM)
            wait_refused(path)
            self.assert_opens(s)
            self.assertIsNone(server.process.poll())
            closed_at = time.monotonic()
        # It exits as soon as the last client closed.
        self.assertEqual(server.wait(), 0)
        self.assertLess(time.monotonic() - closed_at, 2.0)

    def test_an_idle_client_sees_eof_at_the_deadline(self):
        server, _, client = self.serving_a_client("300ms")
        with client as s:
            assert_eof_at_deadline(self, server, s)
        self.assertEqual(server.wait(), 0)

    def test_a_second_sigterm_ends_the_drain_at_once(self):
        server, path, client = self.serving_a_client("60s")
        with client as s:
            server.process.send_signal(signal.SIGTERM)
            wait_refused(path)  # the drain has begun
            self.assertIsNone(server.process.poll())
            server.process.send_signal(signal.SIGTERM)
            self.assertEqual(s.recv(100), b"")
        self.assertEqual(server.wait(), 0)

    def test_an_upgrade_under_load(self):
        path = os.path.join(self.root, "b.sock")
        upgrade = "unix:" + os.path.join(self.root, "upgrade.sock")
        argv = [FD_BROKER, "--listen=unix:" + path, "--root=" + self.root,
                "--upgrade-socket=" + upgrade, "--drain-timeout=500ms"]
        older = Server(argv)
        load = BrokerLoad(path, self.CONTENT)
        newer = None
        try:
            time.sleep(0.1)  # some requests before the upgrade
            newer = Server(argv)
            self.assertEqual(newer.address, older.address)
            self.assertEqual(older.wait(), 0, older.stderr())
            # The older one left the socket file to the newer.
            self.assertTrue(os.path.exists(path))
            with load.lock:
                handed_over_at = load.requests
            time.sleep(0.1)  # and some after it, by the newer one
            with load.lock:
                self.assertGreater(load.requests, handed_over_at)
        finally:
            load.finish()
            if newer is not None:
                self.assertEqual(newer.stop(), 0)
            if older.process.poll() is None:
                older.stop()
        self.assertEqual(load.failures, [])
        self.assertGreater(load.requests, 1)


class BrokerLoad(Load):
    """Seqpacket clients looping connect/OPEN/close."""

    def __init__(self, path, content):
        self.path = path
        self.content = content
        super().__init__(None, loopers=2, long_lived=0)

    def loop(self):
        while not self.stop.is_set():
            try:
                with seqpacket_connect(self.path) as s:
                    got = broker_open(s, "f")
                    if got != (b"OK", [self.content]):
                        self.fail("got %r" % (got,))
            except OSError as error:
                self.fail(repr(error))
            with self.lock:
                self.requests += 1


if __name__ == "__main__":
    ECHO_SERVER, KV_SERVER, FD_BROKER, PRIVSEP_SERVER = sys.argv[1:5]
    unittest.main(argv=sys.argv[:1] + sys.argv[5:], verbosity=2)
