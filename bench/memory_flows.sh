#!/usr/bin/env bash
# OTP request+verify throughput over MemoryStore: the flows of
# bench/redis_throughput.sh (same router, limits and loop) in one process,
# with the flows/s of every interval and what the store holds, so that a
# long run shows whether the rate stays steady as the store fills.
#
# Usage: bash bench/memory_flows.sh [concurrency=50] [seconds=60] [interval=5]
#
# Every flow leaves three rate cells (request and verify per identifier,
# live 20 and 12 min; the resend cooldown, 30 s) and one session record
# (30 days) behind. The bounds are raised by default so that a run does not
# fill them (about 1 200 MiB per 1.8 M flows): the figures are the cost of a
# growing store. MAX_RECORDS, MAX_RATE_KEYS, MAX_CAPACITY in the environment
# set them; MemoryStore's defaults (1000000 each) fill after ~330 000 flows,
# and from then on new identifiers are refused (503 store_unavailable) and
# the run fails.
#
# STEADY_TTL_SECS=T shortens what a flow leaves behind to about T (session,
# cooldown and per-identifier cells; bench/src/flows.rs), so that with the
# default bounds (MAX_RECORDS=1000000 MAX_RATE_KEYS=1000000) the store runs
# at them, reclaiming as fast as it fills: the steady state of a full store.
# LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 (apt-get install
# libjemalloc2) runs the same binary over jemalloc instead of glibc malloc.
# After our run, the peer (bench/src/peer_flow.rs) runs the same loop for
# PEER_SECONDS (default: as long; 0 skips).
set -euo pipefail
cd "$(dirname "$0")" # the bench crate

CONCURRENCY=${1:-50}
SECONDS_RUN=${2:-60}
INTERVAL=${3:-5}

# Build first so compilation does not share the CPU with the measurement.
cargo bench --bench memory_flows --no-run >&2

export MAX_RECORDS=${MAX_RECORDS:-10000000} MAX_RATE_KEYS=${MAX_RATE_KEYS:-30000000}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); concurrency $CONCURRENCY; max_records $MAX_RECORDS, max_rate_keys $MAX_RATE_KEYS, max_capacity ${MAX_CAPACITY:-default}"
echo
echo "== tower-otp: POST /otp/request + POST /otp/verify (in-process router, MemoryStore) =="
CONCURRENCY="$CONCURRENCY" BENCH_SECONDS="$SECONDS_RUN" INTERVAL_SECS="$INTERVAL" \
    cargo bench --bench memory_flows 2>&1 | grep --line-buffered -E '^(interval|tower-otp|peer|failed flows)'
