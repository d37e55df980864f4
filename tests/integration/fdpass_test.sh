#!/usr/bin/env bash
# Runs tools/fdpass: `recv` in the background, `send` a file and a directory
# to it over seqpacket, stream and dgram sockets, and checks what both print;
# then `send` to examples/fd_broker, whose OPEN reply carries a descriptor.
set -euo pipefail
fdpass="$1"
fd_broker="$2"
work="${TEST_TMPDIR:-$(mktemp -d)}"

background_pids=()
stop_background() {
  for pid in "${background_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap stop_background EXIT

fail() { echo "fdpass_test: $*" >&2; exit 1; }

# The things sent: a file of a known size and a directory.
file="$work/some file.txt"
printf 'twelve bytes' >"$file"
file_size="$(wc -c <"$file" | tr -d ' ')"
dir="$work/somedir"
mkdir -p "$dir"

# Starts `$@` in the background with stdout in $1's file; sets last_pid and
# waits (up to 10 s) for its "listening on" line.
start_listening() {
  local out="$1"
  shift
  : >"$out"  # exists before the background shell opens it
  "$@" >"$out" 2>&1 &
  last_pid=$!
  background_pids+=("$last_pid")
  for _ in $(seq 200); do
    grep -q '^listening on ' "$out" && return 0
    kill -0 "$last_pid" 2>/dev/null || { cat "$out" >&2; fail "$* exited early"; }
    sleep 0.05
  done
  cat "$out" >&2
  fail "$* printed no 'listening on' line within 10 s"
}

# Waits (up to 10 s) for $1 to exit; fails unless its status is 0.
expect_exit_0() {
  for _ in $(seq 200); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$1" 2>/dev/null && fail "process $1 still runs after 10 s"
  local status=0
  wait "$1" || status=$?
  [[ "$status" -eq 0 ]] || fail "process $1 exited with status $status"
}

# Fails unless the text $1 (named $2) holds the line $3.
expect_line() {
  grep -qxF -- "$3" <<<"$1" || { echo "$1" >&2; fail "$2: missing line: $3"; }
}

# Sends the file and the directory over a socket of type $1 and checks the
# output of both sides.
exchange() {
  local type="$1"
  local address="unix:@fdpass-test-$$-$type"
  local recv_out="$work/recv.$type.out"
  start_listening "$recv_out" "$fdpass" recv --listen="$address" --type="$type"
  local recv_pid="$last_pid"
  local sent
  sent="$("$fdpass" send --to="$address" --type="$type" --message=hello "$file" "$dir")" ||
    fail "$type: send exited with status $?"
  expect_exit_0 "$recv_pid"
  local received
  received="$(cat "$recv_out")"
  echo "--- $type: recv printed:"; echo "$received"
  echo "--- $type: send printed:"; echo "$sent"
  expect_line "$received" "$type recv" "listening on $address"
  expect_line "$received" "$type recv" "hello"
  expect_line "$received" "$type recv" "fd 0: file:$file_size"
  expect_line "$received" "$type recv" "fd 1: dir"
  if [[ "$type" == dgram ]]; then
    [[ -z "$sent" ]] || fail "dgram: send printed something: $sent"
  else
    expect_line "$sent" "$type send" "OK file:$file_size dir"
  fi
}

exchange seqpacket
exchange stream
exchange dgram

# --count=2: two messages on two connections, then recv exits by itself.
count_out="$work/recv.count.out"
start_listening "$count_out" "$fdpass" recv --listen="unix:@fdpass-test-$$-count" --count=2
count_pid="$last_pid"
"$fdpass" send --to="unix:@fdpass-test-$$-count" --message=first >/dev/null || fail "first send failed"
"$fdpass" send --to="unix:@fdpass-test-$$-count" --message=$'second\ttab' "$dir" >/dev/null ||
  fail "second send failed"
expect_exit_0 "$count_pid"
counted="$(cat "$count_out")"
expect_line "$counted" "count recv" "first"
expect_line "$counted" "count recv" 'second\ttab'
expect_line "$counted" "count recv" "fd 0: dir"

# A reply with a descriptor: fd_broker answers OPEN with one attached.
broker_out="$work/broker.out"
start_listening "$broker_out" "$fd_broker" --listen="unix:@fdpass-test-$$-broker" --root="$work"
opened="$("$fdpass" send --to="unix:@fdpass-test-$$-broker" --message="OPEN some file.txt")" ||
  fail "send to fd_broker exited with status $?"
echo "--- fd_broker OPEN reply:"; echo "$opened"
expect_line "$opened" "OPEN reply" "OK"
expect_line "$opened" "OPEN reply" "fd 0: file:$file_size"
described="$("$fdpass" send --to="unix:@fdpass-test-$$-broker" "$file" "$dir")" ||
  fail "DESCRIBE to fd_broker exited with status $?"
expect_line "$described" "DESCRIBE reply" "OK file:$file_size dir"

# recv stops cleanly on SIGTERM.
start_listening "$work/recv.term.out" "$fdpass" recv --listen="unix:@fdpass-test-$$-term"
kill -TERM "$last_pid"
expect_exit_0 "$last_pid"

# Usage and errors.
"$fdpass" --help | grep -q "usage: fdpass send" || fail "--help printed no usage"
"$fdpass" recv --help | grep -q "usage: fdpass" || fail "recv --help printed no usage"
expect_status() {
  local want="$1"
  shift
  local status=0
  "$@" 2>"$work/stderr" >/dev/null || status=$?
  [[ "$status" -eq "$want" ]] || fail "$*: exit status $status, want $want"
  grep -q '^fdpass: ' "$work/stderr" || fail "$*: no 'fdpass: ' error on stderr"
}
expect_status 2 "$fdpass"
expect_status 2 "$fdpass" frob
expect_status 2 "$fdpass" send --to=unix:@x --bogus=1
expect_status 2 "$fdpass" send --to=127.0.0.1:80 "$file"
expect_status 2 "$fdpass" send --to=unix:@x --message= "$file"
expect_status 2 "$fdpass" send --to=unix:@x --type=raw
expect_status 2 "$fdpass" recv --listen=unix:@x stray
expect_status 1 "$fdpass" send --to="unix:@fdpass-test-$$-nobody" "$file"
expect_status 1 "$fdpass" send --to=unix:@x "$work/no such file"

echo "fdpass_test: ok"
