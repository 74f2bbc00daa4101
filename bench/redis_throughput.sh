#!/usr/bin/env bash
# OTP request+verify throughput over RedisStore, next to redis-benchmark
# running EVALSHA of the store's own GCRA script (src/store/redis/lua/hit_all.lua) at
# the same concurrency against the same private redis-server, in one run.
#
# Usage: bash bench/redis_throughput.sh [concurrency=50] [seconds=10]
# Needs redis-server, redis-cli and redis-benchmark (apt-get install
# redis-server redis-tools). Only talks to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")" # the bench crate

CONCURRENCY=${1:-50}
SECONDS_RUN=${2:-10}

for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || { echo "$tool not found (apt-get install redis-server redis-tools)" >&2; exit 1; }
done

# Build first so compilation does not share the CPU with the measurement.
cargo bench --bench redis_throughput --no-run >&2

port=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 30000))
    if ! redis-cli -p "$candidate" ping >/dev/null 2>&1; then port=$candidate; break; fi
done
[ -n "$port" ] || { echo "no free port" >&2; exit 1; }
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --daemonize no &
redis_pid=$!
trap 'kill "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
done

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $(redis-server --version | cut -d' ' -f1-3); concurrency $CONCURRENCY"
echo
echo "== 1. tower-otp: POST /otp/request + POST /otp/verify (in-process router, RedisStore) =="
REDIS_URL="redis://127.0.0.1:$port" CONCURRENCY="$CONCURRENCY" BENCH_SECONDS="$SECONDS_RUN" \
    cargo bench --bench redis_throughput 2>/dev/null | grep '^tower-otp'

echo
echo "== 2. redis-benchmark: EVALSHA hit_all.lua, one limit (the script the store runs), same server, -c $CONCURRENCY =="
# The script as the store loads it: lib_rate.lua, then hit_all.lua. One
# limit: KEYS[1]; now, interval, tau.
script=$(cat ../src/store/redis/lua/lib_rate.lua ../src/store/redis/lua/hit_all.lua)
sha=$(redis-cli -p "$port" SCRIPT LOAD "$script")
# About the same wall time as run 1 at ~100k/s; random keys like real limits.
requests=$((SECONDS_RUN * 100000))
redis_cpu() { redis-cli -p "$port" INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'; }
evalsha_calls() { redis-cli -p "$port" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\).*/\1/p'; }
cpu0=$(redis_cpu); calls0=$(evalsha_calls)
redis-benchmark -h 127.0.0.1 -p "$port" -c "$CONCURRENCY" -n "$requests" -r 1000000 -q \
    EVALSHA "$sha" 1 '{bench:r:__rand_int__}' 1800000000000000 1200000000 3600000000 \
    | tr '\r' '\n' | grep -v '^$' | tail -1
cpu1=$(redis_cpu); calls1=$(evalsha_calls)
awk -v c0="$cpu0" -v c1="$cpu1" -v n0="$calls0" -v n1="$calls1" \
    'BEGIN { printf "redis-server CPU per EVALSHA: %.1f us (%d calls)\n", (c1 - c0) * 1e6 / (n1 - n0), n1 - n0 }'
