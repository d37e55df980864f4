"""echo_server's TLS mode, driven by clients no one here wrote: Python's ssl
module and `openssl s_client`.

TLS 1.3 and 1.2 echo, 1.1 refused, mutual TLS with and without a client
certificate, close_notify both ways, the handshake deadline, plaintext and
garbage refused with the server still serving, a large transfer both ways at
once, bad certificate files and flags, and no descriptor left behind.

Also tools/netbench --tls against echo_server and against the benchmark's
Asio baseline (bench/asio_tls_echo), and netbench's TLS flags.

Usage: echo_tls_test.py ECHO_SERVER CERT_DIR NETBENCH ASIO_TLS_ECHO (Bazel
passes them).
"""

import os
import select
import socket
import ssl
import subprocess
import sys
import time
import unittest

ECHO_SERVER = None
CERTS = None
NETBENCH = None
ASIO_TLS_ECHO = None
DEADLINE = 10.0  # seconds any single wait may take before the test fails


def cert(name):
    return os.path.join(CERTS, name)


class Server:
    """echo_server with `flags`, once it prints its listening line."""

    def __init__(self, *flags, program=None):
        self.process = subprocess.Popen(
            [program or ECHO_SERVER, "--listen=127.0.0.1:0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.process.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.process.kill()
            raise AssertionError("no listening line: %r, stderr %r" %
                                 (line, self.process.stderr.read()))
        host, port = line.split()[-1].rsplit(":", 1)
        self.address = (host, int(port))
        self.port = int(port)

    def fds(self):
        return sorted(os.listdir("/proc/%d/fd" % self.process.pid))

    def stop(self):
        self.process.terminate()
        try:
            return self.process.wait(timeout=DEADLINE)
        finally:
            self.process.stdout.close()
            self.process.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # SIGTERM, not SIGKILL: a sanitizer build reports leaks at exit,
        # and any report is a failure.
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        errors = self.process.stderr.read()
        self.process.stdout.close()
        self.process.stderr.close()
        if exc[0] is None and self.process.returncode != 0:
            raise AssertionError("echo_server exited %d: %r" % (self.process.returncode, errors))


def client_context(version=None, certificate=None):
    context = ssl.create_default_context(cafile=cert("ca.pem"))
    if version is not None:
        context.minimum_version = version
        context.maximum_version = version
    if certificate is not None:
        context.load_cert_chain(cert(certificate + ".pem"), cert(certificate + ".key"))
    return context


def connect(server, context):
    raw = socket.create_connection(server.address, timeout=DEADLINE)
    return context.wrap_socket(raw, server_hostname="localhost")


def read_exactly(tls, count):
    data = b""
    while len(data) < count:
        chunk = tls.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def wait_for_fds(server, expected):
    """The server's descriptors once they are back to `expected`."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        now = server.fds()
        if now == expected:
            return now
        time.sleep(0.01)  # the server closes on its own time; bounded
    return server.fds()


class EchoTlsTest(unittest.TestCase):

    def tls_server(self, *flags):
        return Server("--cert=" + cert("server.pem"), "--key=" + cert("server.key"), *flags)

    def test_tls13_echo_and_close_notify_both_ways(self):
        with self.tls_server() as server:
            tls = connect(server, client_context())
            self.assertEqual(tls.version(), "TLSv1.3")
            tls.sendall(b"hello over tls 1.3")
            self.assertEqual(read_exactly(tls, 18), b"hello over tls 1.3")
            # unwrap() sends close_notify and returns once the server's came.
            plain = tls.unwrap()
            self.assertEqual(plain.recv(1), b"")  # then the server's FIN
            plain.close()

    def test_a_session_resumes_from_its_ticket(self):
        with self.tls_server() as server:
            context = client_context()
            with connect(server, context) as first:
                first.sendall(b"1")
                read_exactly(first, 1)  # the tickets came before the echo
                session = first.session
                self.assertFalse(first.session_reused)
            raw = socket.create_connection(server.address, timeout=DEADLINE)
            with context.wrap_socket(raw, server_hostname="localhost",
                                     session=session) as second:
                second.sendall(b"2")
                self.assertEqual(read_exactly(second, 1), b"2")
                self.assertTrue(second.session_reused)

    def test_loops_on_two_threads_share_one_context(self):
        with self.tls_server("--threads=2") as server:
            sessions = [connect(server, client_context()) for _ in range(16)]
            for round_trip in range(3):
                for index, tls in enumerate(sessions):
                    message = b"%d.%d" % (index, round_trip)
                    tls.sendall(message)
                    self.assertEqual(read_exactly(tls, len(message)), message)
            for tls in sessions:
                tls.close()

    def test_tls12_echo(self):
        with self.tls_server() as server:
            with connect(server, client_context(ssl.TLSVersion.TLSv1_2)) as tls:
                self.assertEqual(tls.version(), "TLSv1.2")
                tls.sendall(b"twelve")
                self.assertEqual(read_exactly(tls, 6), b"twelve")

    def test_openssl_s_client_echoes_with_1_3_and_1_2(self):
        with self.tls_server() as server:
            for version, expected in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
                client = subprocess.Popen(
                    ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port,
                     "-CAfile", cert("ca.pem"), "-verify_return_error",
                     "-verify_hostname", "localhost", version, "-quiet", "-no_ign_eof"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                client.stdin.write(b"from s_client\n")
                client.stdin.flush()
                line = client.stdout.readline()
                client.stdin.close()
                client.wait(timeout=DEADLINE)
                self.assertEqual(line, b"from s_client\n", client.stderr.read())
                client.stdout.close()
                client.stderr.close()
                brief = subprocess.run(
                    ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port,
                     "-CAfile", cert("ca.pem"), version, "-brief"],
                    stdin=subprocess.DEVNULL, capture_output=True, timeout=DEADLINE)
                self.assertIn(("Protocol version: " + expected).encode(), brief.stderr)

    def test_tls11_is_refused_and_the_server_goes_on(self):
        with self.tls_server() as server:
            old = subprocess.run(
                ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.port,
                 "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=DEADLINE)
            self.assertNotEqual(old.returncode, 0)
            self.assertIn(b"alert protocol version", old.stderr)
            with connect(server, client_context()) as tls:
                tls.sendall(b"still up")
                self.assertEqual(read_exactly(tls, 8), b"still up")

    def test_mutual_tls_accepts_a_signed_client_and_refuses_one_without(self):
        with self.tls_server("--client-ca=" + cert("ca.pem")) as server:
            with connect(server, client_context(certificate="client")) as tls:
                tls.sendall(b"signed")
                self.assertEqual(read_exactly(tls, 6), b"signed")
            tls = connect(server, client_context())
            # TLS 1.3: the refusal comes as an alert on the first read.
            with self.assertRaises(ssl.SSLError) as refused:
                tls.sendall(b"unsigned")
                tls.recv(8)
            self.assertIn("CERTIFICATE_REQUIRED", str(refused.exception))
            tls.close()
            with connect(server, client_context(certificate="client")) as tls:
                tls.sendall(b"again")
                self.assertEqual(read_exactly(tls, 5), b"again")

    def test_a_handshake_not_finished_is_closed_at_the_deadline(self):
        with self.tls_server("--handshake-timeout=300ms") as server:
            with socket.create_connection(server.address, timeout=DEADLINE) as silent:
                started = time.monotonic()
                self.assertEqual(silent.recv(100), b"")  # closed by the server
                waited = time.monotonic() - started
            self.assertGreaterEqual(waited, 0.25)
            self.assertLess(waited, DEADLINE)

    def test_plaintext_and_garbage_are_refused_and_the_server_goes_on(self):
        with self.tls_server() as server:
            for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 4,
                         b"\x16\x03\x01\xff\xff" + b"\x00" * 600):
                with socket.create_connection(server.address, timeout=DEADLINE) as raw:
                    raw.sendall(junk)
                    answer = b""
                    while True:
                        chunk = raw.recv(4096)
                        if not chunk:
                            break
                        answer += chunk
                    # At most an alert record (type 21), then the close.
                    self.assertTrue(answer == b"" or answer[0] == 21, answer)
            with connect(server, client_context()) as tls:
                tls.sendall(b"after the junk")
                self.assertEqual(read_exactly(tls, 14), b"after the junk")

    def test_a_large_transfer_both_ways_at_once_arrives_whole(self):
        # One thread, non-blocking (an SSLSocket must not be used from two
        # threads at once): send while the echo comes back.
        size = 8 << 20
        data = os.urandom(size)
        with self.tls_server() as server:
            tls = connect(server, client_context())
            tls.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            tls.setblocking(False)
            sent, received = 0, bytearray()
            deadline = time.monotonic() + DEADLINE * 3
            while len(received) < size and time.monotonic() < deadline:
                select.select([tls], [tls] if sent < size else [], [], 1.0)
                try:
                    if sent < size:
                        sent += tls.send(data[sent:sent + 65536])
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
                try:
                    while len(received) < size:
                        chunk = tls.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    pass
            self.assertEqual(len(received), size)
            self.assertTrue(bytes(received) == data, "the echo differs from what was sent")
            tls.close()

    def test_no_descriptor_is_left_behind(self):
        with self.tls_server("--handshake-timeout=200ms") as server:
            before = server.fds()
            for _ in range(20):
                with connect(server, client_context()) as tls:
                    tls.sendall(b"y")
                    read_exactly(tls, 1)
                with socket.create_connection(server.address, timeout=DEADLINE) as raw:
                    raw.sendall(b"plaintext\r\n\r\n")
                    raw.recv(100)
            silent = socket.create_connection(server.address, timeout=DEADLINE)
            self.assertEqual(silent.recv(1), b"")  # the deadline closed it
            silent.close()
            self.assertEqual(wait_for_fds(server, before), before)

    def test_sigterm_still_exits_zero(self):
        server = self.tls_server()
        with connect(server, client_context()) as tls:
            tls.sendall(b"z")
            read_exactly(tls, 1)
        self.assertEqual(server.stop(), 0)


class EchoTlsFlagsTest(unittest.TestCase):

    def run_server(self, *flags):
        return subprocess.run([ECHO_SERVER, "--listen=127.0.0.1:0", *flags],
                              capture_output=True, timeout=DEADLINE)

    def test_a_missing_certificate_is_exit_1_naming_it(self):
        result = self.run_server("--cert=" + cert("absent.pem"), "--key=" + cert("server.key"))
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"absent.pem: No such file or directory", result.stderr)

    def test_a_key_that_does_not_match_is_exit_1_with_openssls_reason(self):
        result = self.run_server("--cert=" + cert("server.pem"), "--key=" + cert("client.key"))
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"client.key", result.stderr)
        self.assertIn(b"key values mismatch", result.stderr)

    def test_a_file_that_is_not_pem_is_exit_1(self):
        result = self.run_server("--cert=" + cert("make_certs.sh"), "--key=" + cert("server.key"))
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"no start line", result.stderr)

    def test_flags_that_do_not_go_together_are_exit_2(self):
        for flags in (["--cert=" + cert("server.pem")], ["--key=" + cert("server.key")],
                      ["--client-ca=" + cert("ca.pem")],
                      ["--cert=" + cert("server.pem"), "--key=" + cert("server.key"),
                       "--handshake-timeout=0s"]):
            result = self.run_server(*flags)
            self.assertEqual(result.returncode, 2, (flags, result.stderr))


class NetbenchTlsTest(unittest.TestCase):

    def netbench(self, server, *flags):
        return subprocess.run(
            [NETBENCH, "--target=%s:%d" % server.address, "--connections=8", "--size=1000",
             "--duration=300ms", "--warmup=100ms", *flags],
            capture_output=True, text=True, timeout=DEADLINE * 2)

    def serve(self, program=None):
        return Server("--cert=" + cert("server.pem"), "--key=" + cert("server.key"),
                      program=program)

    def test_it_drives_echo_server_and_asios_baseline(self):
        for program in (ECHO_SERVER, ASIO_TLS_ECHO):
            with self.serve(program) as server:
                result = self.netbench(server, "--tls", "--ca=" + cert("ca.pem"))
                self.assertEqual(result.returncode, 0, (program, result.stderr))
                self.assertIn("errors=0", result.stdout)
                self.assertNotIn("msgs_per_sec=0.0 ", result.stdout)

    def test_a_certificate_it_cannot_verify_fails_the_connections(self):
        with self.serve() as server:
            untrusted = self.netbench(server, "--tls", "--ca=" + cert("other_ca.pem"))
            self.assertEqual(untrusted.returncode, 1)
            self.assertIn("certificate verify failed", untrusted.stderr)
            wrong = self.netbench(server, "--tls", "--ca=" + cert("ca.pem"),
                                  "--server-name=conet.example")
            self.assertEqual(wrong.returncode, 1)
            self.assertIn("hostname mismatch", wrong.stderr)
            plain = self.netbench(server)  # plaintext against TLS: the echo never comes
            self.assertEqual(plain.returncode, 1)

    def test_tls_flags_without_tls_are_exit_2(self):
        with self.serve() as server:
            self.assertEqual(self.netbench(server, "--ca=" + cert("ca.pem")).returncode, 2)
            self.assertEqual(self.netbench(server, "--server-name=x").returncode, 2)
            missing = self.netbench(server, "--tls", "--ca=" + cert("absent.pem"))
            self.assertEqual(missing.returncode, 1)
            self.assertIn("absent.pem", missing.stderr)


if __name__ == "__main__":
    ECHO_SERVER, CERTS = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    NETBENCH, ASIO_TLS_ECHO = os.path.abspath(sys.argv[3]), os.path.abspath(sys.argv[4])
    unittest.main(argv=sys.argv[:1], verbosity=2)
