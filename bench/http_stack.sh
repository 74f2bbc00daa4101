#!/usr/bin/env bash
# HTTP stack benchmark: hello-world axum server, bare vs with the tower-otp
# hardening stack (security headers + client IP + rate limit), alternately in
# one run. The server runs one runtime thread pinned to one core; wrk runs on
# the other core.
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

run() { # mode -> prints req/s
  local mode=$1 pid rps
  taskset -c "$SERVER_CPU" "$BIN" "$mode" "$PORT" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
  done
  # Warm-up, then the measured run.
  taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d2s "http://127.0.0.1:$PORT/" >/dev/null
  rps=$(taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"$DURATION" "http://127.0.0.1:$PORT/" \
        | awk '/Requests\/sec/ {print $2}')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  echo "$rps"
}

bare=(); stack=()
for r in $(seq "$ROUNDS"); do
  # Alternate the order so drift in machine load hits both modes alike.
  if (( r % 2 )); then order=(bare stack); else order=(stack bare); fi
  for mode in "${order[@]}"; do
    rps=$(run "$mode")
    echo "round $r $mode $rps req/s" >&2
    if [[ $mode == bare ]]; then bare+=("$rps"); else stack+=("$rps"); fi
  done
done

python3 - "${bare[*]}" "${stack[*]}" <<'PY'
import statistics, sys
bare = [float(x) for x in sys.argv[1].split()]
stack = [float(x) for x in sys.argv[2].split()]
ratios = [s / b for b, s in zip(bare, stack)]
print(f"bare  req/s: median {statistics.median(bare):,.0f}  ({', '.join(f'{x:,.0f}' for x in bare)})")
print(f"stack req/s: median {statistics.median(stack):,.0f}  ({', '.join(f'{x:,.0f}' for x in stack)})")
print(f"stack/bare: median of medians {statistics.median(stack)/statistics.median(bare):.3f}, "
      f"per-round ratios {', '.join(f'{r:.3f}' for r in ratios)}")
PY
