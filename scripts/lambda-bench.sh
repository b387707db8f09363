#!/usr/bin/env bash
# The Lambda section of `make bench`: every function binary's cold start and
# fn-api's warm latency, release builds run directly against the minimal Lambda
# runtime API of the driver, on a throwaway PostgreSQL. Driver:
# scripts/lambda_bench.py. Method and figures: docs/performance.md.
#
#   scripts/lambda-bench.sh
#
# Database: DATABASE_URL's server with a database of its own (dropped after),
# else a throwaway cluster (scripts/pg.sh). Migrated with calctl; the bench
# provider's weekly rule goes in through fn-api's putWeeklyRule.
# Knobs: LAMBDA_BENCH_REQUESTS (300), LAMBDA_BENCH_WARMUP (30),
# LAMBDA_BENCH_COLD_RUNS (10), LAMBDA_BENCH_WATCH=1 (warm latency through
# `cargo lambda watch` as well, for comparison). Everything listens on 127.0.0.1 and is stopped
# on exit. The functions get dummy AWS settings pointing at a closed local
# port: nothing reaches AWS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LL_NAME=lambda-bench
. scripts/lambda-local.sh

say() { printf 'lambda-bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

CARGO=${CARGO:-cargo}
PYTHON=${PYTHON:-python3}
REQUESTS=${LAMBDA_BENCH_REQUESTS:-300}
WARMUP=${LAMBDA_BENCH_WARMUP:-30}
COLD_RUNS=${LAMBDA_BENCH_COLD_RUNS:-10}
# The binaries of template.yaml's functions (BuildProperties: Binary), each
# once: two functions may share one (the sync receivers).
mapfile -t BINS < <(awk '/^        Binary: / && !seen[$2]++ { print $2 }' template.yaml)
((${#BINS[@]} > 0)) || die "no Binary: in template.yaml"

tmp=$(mktemp -d -t cal-lambda-bench.XXXXXX)
pgdir=
own_db=
admin_url=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=$?
    watch_stop
    if [[ -n $own_db ]]; then
        psql -q -X "$admin_url" -c "drop database if exists \"$own_db\" with (force)" >/dev/null 2>&1 ||
            say "could not drop database $own_db"
    fi
    if [[ -n $pgdir ]]; then scripts/pg.sh stop "$pgdir"; fi
    rm -rf -- "$tmp"
    return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ ${LAMBDA_BENCH_WATCH:-0} != 1 ]] || ensure_cargo_lambda

# Release binaries, built before anything is timed (the watch runs
# `cargo run --release`, which then finds them up to date).
say "building release binaries: ${BINS[*]} calctl"
started=$SECONDS
pkgs=()
for b in "${BINS[@]}" calctl; do pkgs+=(-p "$b"); done
"$CARGO" build --quiet --release "${pkgs[@]}"
target=$("$CARGO" metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
say "built in $((SECONDS - started)) s"

# Database ------------------------------------------------------------------
if [[ -n ${DATABASE_URL:-} ]] && command -v psql >/dev/null && [[ $DATABASE_URL =~ ^postgres(ql)?:// ]]; then
    admin_url=$DATABASE_URL
    own_db="cal_lambda_bench_$(date +%s)_$$"
    psql -q -X -v ON_ERROR_STOP=1 "$admin_url" -c "create database \"$own_db\"" >/dev/null ||
        { own_db=; die "could not create a database on the server of DATABASE_URL"; }
    DATABASE_URL=$("$PYTHON" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$admin_url" "$own_db")
    say "database $own_db on the server of DATABASE_URL"
else
    pgdir=$(mktemp -d -t cal-lambda-bench-pg.XXXXXX)
    eval "$(scripts/pg.sh start "$pgdir")"
    say "throwaway PostgreSQL at $DATABASE_URL"
fi
export DATABASE_URL
"$target/release/calctl" migrate >&2

# What the functions read at init. AWS: dummy credentials, a region, and an
# endpoint on a closed 127.0.0.1 port (nothing here calls AWS at init; if
# something did, it would fail fast, locally).
dead_port=$(free_port)
export FEED_BASE_URL=https://feeds.example.invalid/feeds/ \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
    AWS_ENDPOINT_URL="http://127.0.0.1:$dead_port" AWS_EC2_METADATA_DISABLED=true \
    EVENT_BUS_NAME=cal-bench IDEMPOTENCY_TABLE=cal-bench-idempotency FEASIBILITY_CACHE_TABLE= \
    RUST_LOG=${RUST_LOG:-warn}
# fn-api's feasibility cache stays off (no table), so every query runs the
# engine on Postgres. The cache rebuilder requires a table name at init: it
# gets one of its own below.
# The per-customer hold limit (default per hour) would stop the createHold run.
export HOLDS_PER_CUSTOMER_PER_HOUR=1000000

# (b) Cold start: each binary straight against a local runtime API ----------
cold_bins=()
for b in "${BINS[@]}"; do cold_bins+=("$target/release/$b"); done
"$PYTHON" scripts/lambda_bench.py cold "${cold_bins[@]}" --runs "$COLD_RUNS" --first-response fn-api \
    --env fn-cache-rebuilder:FEASIBILITY_CACHE_TABLE=cal-bench-cache --log-dir "$tmp"
# The log of a failed run is gone with $tmp; rerun with --log-dir to keep it.

# (a) Warm latency: one long-lived fn-api process under the same runtime API.
# Through cargo lambda watch, with the event sent in two segments, a fifth of
# the calls waited ~40 ms for a delayed ACK: the emulator's, not fn-api's
# (docs/performance.md). LAMBDA_BENCH_WATCH=1 measures through it as well.
"$PYTHON" scripts/lambda_bench.py warm --bin "$target/release/fn-api" --requests "$REQUESTS" --warmup "$WARMUP" \
    --log "$tmp/fn-api.warm.log" ||
    { grep -v '^\s*$' "$tmp/fn-api.warm.log" | tail -n 30 >&2; exit 1; }

[[ ${LAMBDA_BENCH_WATCH:-0} == 1 ]] || exit 0
lport=$(free_port)
say "cargo lambda watch --release -p fn-api on 127.0.0.1:$lport"
setsid cargo lambda watch -A 127.0.0.1 -P "$lport" --ignore-changes --release -p fn-api >"$tmp/watch.log" 2>&1 </dev/null &
WATCH_PID=$!
wait_port "$lport" "$WATCH_PID" "cargo lambda watch" "$tmp/watch.log" 120
url=$(invocations_url fn-api "$lport")
if command -v ss >/dev/null; then
    exposed=$(ss -ltnpH | grep -E "pid=($(pgrep -g "$WATCH_PID" | paste -sd'|'))," | awk '$4 !~ /^127\.0\.0\.1:/' || true)
    [[ -z $exposed ]] || die "a server listens beyond 127.0.0.1: $exposed"
fi
"$PYTHON" scripts/lambda_bench.py warm --url "$url" --provider bench-prov-watch --requests "$REQUESTS" --warmup "$WARMUP" ||
    { grep -v '^\s*$' "$tmp/watch.log" | tail -n 30 >&2; exit 1; }
