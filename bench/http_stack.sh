#!/usr/bin/env bash
# HTTP stack benchmark: hello-world axum server, bare vs with the tower-otp
# hardening stack (security headers + client IP + rate limit + JWT), alternately
# in one run. Every request carries the same bearer token in both modes. The server runs one runtime thread pinned to one core; wrk runs on
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
cd "$(dirname "$0")/.."

ROUNDS=${1:-5}
DURATION=${2:-10s}
PORT=${PORT:-38080}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TARGET=${CARGO_TARGET_DIR:-target}

cargo build --release --features axum --example bench_server >&2
BIN="$TARGET/release/examples/bench_server"
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

bare=(); stack=(); bare_cpu=(); stack_cpu=()
for r in $(seq "$ROUNDS"); do
  # Alternate the order so drift in machine load hits both modes alike.
  if (( r % 2 )); then order=(bare stack); else order=(stack bare); fi
  for mode in "${order[@]}"; do
    read -r rps cpu < <(run "$mode")
    echo "round $r $mode $rps req/s, $cpu µs CPU/request" >&2
    if [[ $mode == bare ]]; then bare+=("$rps"); bare_cpu+=("$cpu")
    else stack+=("$rps"); stack_cpu+=("$cpu"); fi
  done
done

python3 - "${bare[*]}" "${stack[*]}" "${bare_cpu[*]}" "${stack_cpu[*]}" <<'PY'
import statistics, sys
bare, stack, bare_cpu, stack_cpu = ([float(x) for x in a.split()] for a in sys.argv[1:5])
ratios = [s / b for b, s in zip(bare, stack)]
print(f"bare  req/s: median {statistics.median(bare):,.0f}  ({', '.join(f'{x:,.0f}' for x in bare)})")
print(f"stack req/s: median {statistics.median(stack):,.0f}  ({', '.join(f'{x:,.0f}' for x in stack)})")
print(f"stack/bare: median of medians {statistics.median(stack)/statistics.median(bare):.3f}, "
      f"per-round ratios {', '.join(f'{r:.3f}' for r in ratios)}")
mb, ms = statistics.median(bare_cpu), statistics.median(stack_cpu)
print(f"server CPU/request: bare median {mb:.2f} µs ({', '.join(f'{x:.2f}' for x in bare_cpu)}), "
      f"stack median {ms:.2f} µs ({', '.join(f'{x:.2f}' for x in stack_cpu)})")
print(f"stack cost {ms - mb:+.2f} µs/request; CPU-bound throughput ratio stack/bare = {mb / ms:.3f}")
PY
