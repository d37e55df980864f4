#!/usr/bin/env bash
# Checks the benchmark baselines bench/epoll_echo and bench/asio_echo against
# examples/echo_server's contract (docs/programs/echo_server.md): with
# --threads=1 and 2 each prints its listening line, echoes tools/netbench's
# load without an error, echoes an 8 MiB stream whose client half-closes and
# then closes, and exits 0 on SIGTERM.
#
#   bench_servers_test.sh NETBENCH SERVER...
set -euo pipefail
netbench="$1"
shift
work="${TEST_TMPDIR:-$(mktemp -d)}"

server_pid=""
kill_server() {
  if [[ -n "$server_pid" ]]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
}
trap kill_server EXIT

fail() { echo "bench_servers_test: $*" >&2; exit 1; }

# Starts server $1 with the rest as flags and sets server_pid and
# server_address from its "listening on ADDRESS" line (polled for up to 10 s).
start_server() {
  local server="$1" out="$work/server.$RANDOM.out"
  shift
  : >"$out"  # exists before the background shell opens it
  "$server" "$@" >"$out" 2>&1 &
  server_pid=$!
  server_address=""
  for _ in $(seq 200); do
    server_address="$(sed -n 's/^listening on //p' "$out")"
    if [[ -n "$server_address" ]]; then
      [[ "$(wc -l <"$out")" -eq 1 ]] || fail "$server printed more than one line: $(cat "$out")"
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || { cat "$out" >&2; fail "$server exited"; }
    sleep 0.05
  done
  fail "$server printed no 'listening on' line within 10 s"
}

# Stops the server with SIGTERM; it must exit with status 0 within 10 s.
stop_server_cleanly() {
  kill -TERM "$server_pid"
  for _ in $(seq 200); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  local status=0
  wait "$server_pid" || status=$?
  server_pid=""
  [[ "$status" -eq 0 ]] || fail "$1 exited with status $status after SIGTERM"
}

# Runs netbench against $1 (the server's name is $2) and checks the result.
bench() {
  local out status=0
  out="$("$netbench" --target="$1" --connections=16 --depth=2 --size=100 \
    --duration=500ms --warmup=100ms)" || status=$?
  echo "$2 at $1: $(tail -n 1 <<<"$out")"
  [[ "$status" -eq 0 ]] || fail "$2: netbench exited with status $status"
  local last
  last="$(tail -n 1 <<<"$out")"
  [[ "$last" =~ ^msgs_per_sec=.*\ errors=0$ ]] || fail "$2: errors reported: $last"
  [[ ! "$last" =~ ^msgs_per_sec=0(\.0*)?\  ]] || fail "$2: nothing echoed: $last"
}

# Sends 8 MiB to $1 on one thread and reads the echo on another, half-closes
# after the last byte, and checks that exactly those bytes come back followed
# by EOF (the server closes). The reader starts late and with a small receive
# buffer, so the server's send hits EAGAIN and its unsent-data path runs.
half_close() {
  python3 - "$1" <<'EOF'
import os, socket, sys, threading, time
host, _, port = sys.argv[1].rpartition(":")
family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
sock = socket.socket(family, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sock.settimeout(10)
sock.connect((host.strip("[]"), int(port)))
payload = os.urandom(8 << 20)
def send():
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
sender = threading.Thread(target=send)
sender.start()
time.sleep(0.3)
received = bytearray()
while True:
    chunk = sock.recv(1 << 16)
    if not chunk:
        break
    received += chunk
sender.join()
if bytes(received) != payload:
    sys.exit("echoed %d bytes, want the %d sent back unchanged" %
             (len(received), len(payload)))
EOF
}

have_python=true
command -v python3 >/dev/null || { have_python=false; echo "no python3: half-close check skipped"; }

for server in "$@"; do
  name="$(basename "$server")"
  for threads in 1 2; do
    start_server "$server" --listen=127.0.0.1:0 --threads="$threads"
    [[ "$server_address" =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]] ||
      fail "$name: bad listening address '$server_address'"
    bench "$server_address" "$name --threads=$threads"
    if $have_python; then
      half_close "$server_address" || fail "$name --threads=$threads: half-close echo failed"
    fi
    stop_server_cleanly "$name --threads=$threads"
  done
  "$server" --help | grep -q "usage: $name" || fail "$name --help printed no usage"
  status=0
  "$server" --bogus=1 2>/dev/null || status=$?
  [[ "$status" -ne 0 ]] || fail "$name accepted an unknown flag"
done

echo "bench_servers_test: ok"
