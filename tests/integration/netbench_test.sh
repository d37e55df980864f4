#!/usr/bin/env bash
# Runs tools/netbench against examples/echo_server (TCP and a UNIX abstract
# socket) and checks its exit status and its final key=value line.
set -euo pipefail
netbench="$1"
echo_server="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}"

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; fi
}
trap stop_server EXIT

fail() { echo "netbench_test: $*" >&2; exit 1; }

# Starts echo_server on $1 and sets server_pid and server_address from its
# "listening on ADDRESS" line (polled for up to 10 s).
start_server() {
  local out="$work/server.$RANDOM.out"
  : >"$out"  # exists before the background shell opens it
  "$echo_server" --listen="$1" >"$out" 2>&1 &
  server_pid=$!
  server_address=""
  for _ in $(seq 200); do
    server_address="$(sed -n 's/^listening on //p' "$out")"
    [[ -n "$server_address" ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$out" >&2; fail "echo_server exited"; }
    sleep 0.05
  done
  fail "echo_server printed no 'listening on' line within 10 s"
}

# Stops the server with SIGTERM; it must exit with status 0.
stop_server_cleanly() {
  kill -TERM "$server_pid"
  local status=0
  wait "$server_pid" || status=$?
  server_pid=""
  [[ "$status" -eq 0 ]] || fail "echo_server exited with status $status after SIGTERM"
}

line_format='^msgs_per_sec=[0-9]+(\.[0-9]+)? mib_per_sec=[0-9]+(\.[0-9]+)? p50_us=[0-9]+(\.[0-9]+)? p99_us=[0-9]+(\.[0-9]+)? p999_us=[0-9]+(\.[0-9]+)? errors=[0-9]+$'

# Runs netbench against $1 and checks the result.
bench() {
  local out status=0
  out="$("$netbench" --target="$1" --connections=8 --threads=2 --depth=4 \
    --size=100 --duration=1s --warmup=200ms)" || status=$?
  echo "$1: $out"
  [[ "$status" -eq 0 ]] || fail "netbench exited with status $status"
  local last
  last="$(tail -n 1 <<<"$out")"
  [[ "$last" =~ $line_format ]] || fail "bad final line: $last"
  [[ "$last" == *" errors=0" ]] || fail "errors reported: $last"
  local rate
  rate="$(sed -n 's/^msgs_per_sec=\([0-9.]*\) .*/\1/p' <<<"$last")"
  awk -v r="$rate" 'BEGIN { exit !(r > 0) }' || fail "msgs_per_sec is not > 0: $last"
}

start_server 127.0.0.1:0
bench "$server_address"
stop_server_cleanly

start_server "unix:@netbench-test-$$"
bench "$server_address"
stop_server_cleanly

"$netbench" --help | grep -q "usage: netbench" || fail "--help printed no usage"
status=0
"$netbench" --target=127.0.0.1:1 --bogus=1 2>/dev/null || status=$?
[[ "$status" -eq 2 ]] || fail "a bad flag gave exit status $status, want 2"
status=0
"$netbench" --connections=2 2>/dev/null || status=$?
[[ "$status" -eq 2 ]] || fail "a missing --target gave exit status $status, want 2"

echo "netbench_test: ok"
