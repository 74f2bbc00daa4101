#!/usr/bin/env bash
# HTTP stack benchmark: hello-world axum server, bare vs with the tower-otp
# hardening stack (security headers + client IP + rate limit + JWT) vs the peer
# crates doing the same job (tower_governor + six tower-http header layers + a
# jsonwebtoken check), rotating through the three in one run. Every request
# carries the same bearer token in every mode. The server runs one runtime thread pinned to one core; wrk runs on
# the other core.
#
# Two figures per run: throughput (req/s, from wrk) and server CPU time per
# request (sum of the server's on-CPU time from /proc/<pid>/task/*/schedstat,
# divided by the requests wrk completed). On a busy machine throughput mostly
# measures how often the scheduler lets the server run; CPU per request does
# not, so it is the figure to compare there.
#
# Usage: bash bench/http_stack.sh [rounds] [duration]   (defaults: 5 rounds, 10s)
# Needs: wrk (apt-get install -y wrk), taskset, python3.
set -euo pipefail
cd "$(dirname "$0")" # the bench crate

ROUNDS=${1:-5}
DURATION=${2:-10s}
PORT=${PORT:-38080}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --bin bench_server >&2
BIN="$TARGET/release/bench_server"
AUTH="Authorization: Bearer $("$BIN" token)"

cpu_ns() { # pid -> on-CPU nanoseconds of all its threads
  cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {print s}'
}

run() { # mode -> prints "req/s cpu_us_per_request"
  local mode=$1 pid out before after
  taskset -c "$SERVER_CPU" "$BIN" "$mode" "$PORT" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
  done
  # Warm-up, then the measured run.
  taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d2s -H "$AUTH" "http://127.0.0.1:$PORT/" >/dev/null
  before=$(cpu_ns "$pid")
  out=$(taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"$DURATION" -H "$AUTH" "http://127.0.0.1:$PORT/")
  after=$(cpu_ns "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v b="$before" -v a="$after" '
    /requests in/ {n = $1}
    /Requests\/sec/ {rps = $2}
    END {printf "%s %.3f\n", rps, (a - b) / 1000 / n}' <<<"$out"
}

# MODES="bare only-headers ..." picks other bench_server modes (bare first).
read -r -a MODES <<<"${MODES:-bare stack peer}"
declare -A RPS CPU
for r in $(seq "$ROUNDS"); do
  # Rotate the order so drift in machine load hits every mode alike.
  k=$((r % ${#MODES[@]}))
  order=("${MODES[@]:k}" "${MODES[@]:0:k}")
  for mode in "${order[@]}"; do
    read -r rps cpu < <(run "$mode")
    echo "round $r $mode $rps req/s, $cpu µs CPU/request" >&2
    RPS[$mode]+="$rps "; CPU[$mode]+="$cpu "
  done
done

args=()
for mode in "${MODES[@]}"; do args+=("$mode" "${RPS[$mode]}" "${CPU[$mode]}"); done
python3 - "${args[@]}" <<'PY'
import statistics, sys
med = statistics.median
a = sys.argv[1:]
modes = {a[i]: ([float(x) for x in a[i + 1].split()], [float(x) for x in a[i + 2].split()]) for i in range(0, len(a), 3)}
base_rps, base_cpu = next(iter(modes.values()))
for name, (rps, cpu) in modes.items():
    ratio = med([x / b for b, x in zip(base_rps, rps)])
    print(f"{name:16} req/s median {med(rps):>9,.0f}  x{ratio:.3f} of first  "
          f"CPU/request median {med(cpu):6.2f} µs ({med(cpu) - med(base_cpu):+.2f})  "
          f"(req/s {', '.join(f'{x:,.0f}' for x in rps)})")
PY
