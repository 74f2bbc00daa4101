#!/usr/bin/env bash
# Instructions per request, in the server's own code (user space), for each
# bench_server mode: the load-independent companion of bench/http_stack.sh. wrk's
# throughput on a shared VM moves by 5–20 % between runs; callgrind's
# instruction count for the same binary and load moves by under 1 %, so
# this is the figure to compare when a change is smaller than that noise.
# Kernel time (the socket calls) is not counted here; it is the same for
# every mode apart from the bytes sent.
#
# Each mode's server runs under `valgrind --tool=callgrind`, takes a warm-up,
# has its counters zeroed, serves `wrk -c10` for the duration, and is dumped.
#
# Usage: MODES="bare stack" bash bench/http_instructions.sh [duration]   (default 5s)
# KEEP=1 keeps the callgrind files (for callgrind_annotate) and prints where.
# Needs: valgrind, wrk (apt-get install -y valgrind wrk).
set -euo pipefail
cd "$(dirname "$0")" # the bench crate

DURATION=${1:-5s}
PORT=${PORT:-38090}
TARGET=${CARGO_TARGET_DIR:-target}
read -r -a MODES <<<"${MODES:-bare bare-same-headers stack peer}"

cargo build --release --bin bench_server >&2
BIN="$(realpath "$TARGET/release/bench_server")"
AUTH="Authorization: Bearer $("$BIN" token)"
OUT=$(mktemp -d)
if [ -n "${KEEP:-}" ]; then echo "callgrind files: $OUT" >&2; else trap 'rm -rf "$OUT"' EXIT; fi

base=""
for mode in "${MODES[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$OUT/$mode.%p" \
    "$BIN" "$mode" "$PORT" 2>"$OUT/$mode.log" &
  pid=$!
  for _ in $(seq 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.1
  done
  wrk -t1 -c10 -d2s -H "$AUTH" "http://127.0.0.1:$PORT/" >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  out=$(wrk -t1 -c10 -d"$DURATION" -H "$AUTH" "http://127.0.0.1:$PORT/")
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  # The dump taken after zeroing is the one with the larger suffix.
  ir=$(awk '/^(summary|totals):/ {print $2}' "$OUT/$mode".*.* | sort -n | tail -1)
  per=$((ir / requests))
  base=${base:-$per}
  printf '%-18s %8d instructions/request  %+7d vs %s  (%d requests)\n' \
    "$mode" "$per" "$((per - base))" "${MODES[0]}" "$requests"
done
