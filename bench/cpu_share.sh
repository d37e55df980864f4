#!/usr/bin/env bash
# Shows which side of an echo run is the bottleneck: runs one echo server
# pinned to core 0 and tools/netbench pinned to core 1 (run_echo.py's
# "separate cores" placement) and prints how busy each core was.
#
#   bench/cpu_share.sh BIN_DIR SERVER [CONNECTIONS] [SIZE] [DURATION]
#   bench/cpu_share.sh /tmp/conet-bench echo_server 64 64 4s
#
# BIN_DIR holds the servers and netbench, as copied by
# `python3 bench/run_echo.py --copy-to=BIN_DIR`. Prints netbench's result
# line, then server_cpu and netbench_cpu (busy fraction of the wall time)
# and netbench_kernel_share (the part of its busy time spent in the kernel).
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 BIN_DIR SERVER [CONNECTIONS] [SIZE] [DURATION]" >&2
  exit 2
fi
bin_dir=$1
server=$2
connections=${3:-64}
size=${4:-64}
duration=${5:-4s}
ticks=$(getconf CLK_TCK)

# Busy time of a process so far, in clock ticks (utime + stime).
busy_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

coproc SERVER { exec taskset -c 0 "$bin_dir/$server" --listen=127.0.0.1:0; }
# shellcheck disable=SC2153  # SERVER_PID is set by coproc
server_pid=$SERVER_PID
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
read -r line <&"${SERVER[0]}"
target=$(awk '{print $3}' <<<"$line")

before=$(busy_ticks "$server_pid")
start=$(date +%s.%N)
times=$(mktemp)
taskset -c 1 /usr/bin/time -f "%U %S" -o "$times" "$bin_dir/netbench" \
  --target="$target" --connections="$connections" --size="$size" \
  --duration="$duration" --warmup=0s | tail -1
end=$(date +%s.%N)
after=$(busy_ticks "$server_pid")
read -r user sys <"$times"
rm -f "$times"
awk -v b="$before" -v a="$after" -v t="$ticks" -v s="$start" -v e="$end" \
    -v u="$user" -v k="$sys" 'BEGIN {
  wall = e - s
  printf "server_cpu=%.2f netbench_cpu=%.2f netbench_kernel_share=%.2f\n",
         (a - b) / t / wall, (u + k) / wall, k / (u + k)
}'
