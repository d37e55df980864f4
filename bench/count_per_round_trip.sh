#!/usr/bin/env bash
# Counts user-space instructions (callgrind) and system calls (strace) per
# echo round trip for the three single-threaded ping-pong programs:
# pingpong_conet, pingpong_epoll (the plain loop) and pingpong_asio, over a
# UNIX socketpair (the main measure) and over loopback TCP.
#
#   ./tools/bazel build -c opt //bench:pingpong_conet //bench:pingpong_epoll \
#       //bench:pingpong_asio
#   bench/count_per_round_trip.sh [CONET_BIN EPOLL_BIN ASIO_BIN]
#
# Without arguments the binaries are taken from bazel-out/k8-opt/bin/bench/.
# Each program runs with --round-trips=20000 and --round-trips=40000; the
# per-round-trip figure is (count(40000) - count(20000)) / 20000, which
# cancels start-up and shut-down. Callgrind counts are exact and repeatable.
set -euo pipefail

readonly small=20000
readonly large=40000
readonly delta=$((large - small))

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v strace >/dev/null || missing+=(strace)
if ((${#missing[@]} > 0)); then
  echo "count_per_round_trip: missing tools: ${missing[*]}" >&2
  echo "install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi

names=(conet epoll asio)
if (($# == 3)); then
  bins=("$1" "$2" "$3")
elif (($# == 0)); then
  root=$(cd "$(dirname "$0")/.." && pwd)
  bins=()
  for name in "${names[@]}"; do
    bins+=("$root/bazel-out/k8-opt/bin/bench/pingpong_$name")
  done
else
  echo "usage: $0 [CONET_BIN EPOLL_BIN ASIO_BIN]" >&2
  exit 2
fi
for bin in "${bins[@]}"; do
  if [[ ! -x $bin ]]; then
    echo "count_per_round_trip: no executable $bin (build with -c opt first)" >&2
    exit 1
  fi
done

work=$(mktemp -d /tmp/count_per_round_trip.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Prints the total Ir of one callgrind run of `$1` with N=`$2` over
# transport `$3`.
instructions() {
  local bin=$1 n=$2 transport=$3 out
  rm -f "$work"/cg.*
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" \
    "$bin" --round-trips="$n" --transport="$transport" >/dev/null 2>"$work/valgrind.log" || {
    echo "count_per_round_trip: $bin --round-trips=$n failed under callgrind:" >&2
    cat "$work/valgrind.log" >&2
    exit 1
  }
  out=$(ls "$work"/cg.*)
  # "summary:" (or "totals:") holds the events of the whole run; Ir first.
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

# Runs `$1` with N=`$2` over transport `$3` under strace -c; leaves the
# table in `$4`.
syscall_table() {
  local bin=$1 n=$2 transport=$3 table=$4
  strace -f -c -o "$table" "$bin" --round-trips="$n" --transport="$transport" >/dev/null || {
    echo "count_per_round_trip: $bin --round-trips=$n failed under strace" >&2
    exit 1
  }
}

# Prints "name calls" per syscall from an strace -c table (errors included
# in calls; the "total" line as "total N").
syscall_counts() {
  awk '
    /^-/ || /^%/ || NF == 0 { next }
    # columns: % time, seconds, usecs/call, calls, [errors,] syscall
    { name = $NF; calls = $4; print name, calls }
  ' "$1"
}

transports=(socketpair tcp)
declare -A ir_per_rt sys_per_rt breakdown
for transport in "${transports[@]}"; do
  for i in "${!names[@]}"; do
    name=${names[$i]}
    bin=${bins[$i]}
    key=$name/$transport
    ir_small=$(instructions "$bin" "$small" "$transport")
    ir_large=$(instructions "$bin" "$large" "$transport")
    ir_per_rt[$key]=$(awk -v a="$ir_small" -v b="$ir_large" -v d="$delta" \
      'BEGIN { printf "%.1f", (b - a) / d }')

    syscall_table "$bin" "$small" "$transport" "$work/strace_small.txt"
    syscall_table "$bin" "$large" "$transport" "$work/strace_large.txt"
    syscall_counts "$work/strace_small.txt" >"$work/counts_small"
    syscall_counts "$work/strace_large.txt" >"$work/counts_large"
    sys_per_rt[$key]=$(awk -v d="$delta" '
      FNR == NR { small[$1] = $2; next }
      $1 == "total" { printf "%.2f", ($2 - small["total"]) / d }
    ' "$work/counts_small" "$work/counts_large")
    # Per-syscall calls per round trip at N=40000 (start-up included); calls
    # made only at start-up (under 0.005 per round trip) are listed by name.
    breakdown[$key]=$(awk -v n="$large" '
      $1 == "total" { next }
      $2 / n >= 0.005 { printf "  %-16s %6.2f\n", $1, $2 / n; next }
      { rest = rest " " $1 }
      END { if (rest != "") printf "  (start-up only:%s)\n", rest }
    ' "$work/counts_large" | sort -s -k2,2nr)
  done
done

echo
printf '%-15s %-11s %22s %15s %20s\n' implementation transport "instructions/round trip" \
  "ratio to epoll" "syscalls/round trip"
for transport in "${transports[@]}"; do
  epoll_ir=${ir_per_rt[epoll/$transport]}
  for name in "${names[@]}"; do
    key=$name/$transport
    ratio=$(awk -v a="${ir_per_rt[$key]}" -v b="$epoll_ir" 'BEGIN { printf "%.2fx", a / b }')
    printf '%-15s %-11s %22s %15s %20s\n' "$name" "$transport" "${ir_per_rt[$key]}" "$ratio" \
      "${sys_per_rt[$key]}"
  done
done
echo
echo "targets (bench/README.md): conet <= 3x epoll instructions, <= 6 syscalls per round trip"
for transport in "${transports[@]}"; do
  for name in "${names[@]}"; do
    echo
    echo "$name over $transport: system calls per round trip (--round-trips=$large, calls / $large):"
    echo "${breakdown[$name/$transport]}"
  done
done
