#!/usr/bin/env bash
# Runs examples/hello and checks what it prints (the README shows this).
set -euo pipefail
hello="$1"
out="$("$hello" --workers=3)"
echo "$out"
expect() {
  grep -qF -- "$1" <<<"$out" || { echo "missing line: $1" >&2; exit 1; }
}
expect "worker 1 done after 10 ms"
expect "worker 3 done after 30 ms"
expect "sum of squares 14"
expect "slow answer: DEADLINE_EXCEEDED"
expect "sleeper 1 woke: CANCELLED"
expect "sleeper 2 woke: CANCELLED"
expect "group joined: OK"
# Worker lines come in deadline order.
[[ "$(grep -n 'worker 1' <<<"$out" | cut -d: -f1)" -lt "$(grep -n 'worker 3' <<<"$out" | cut -d: -f1)" ]]
"$hello" --help | grep -q "usage: hello"
if "$hello" --workers=0 2>/dev/null; then echo "--workers=0 accepted" >&2; exit 1; fi
echo "hello_test: ok"
