#!/usr/bin/env bash
# Invoke one Lambda function locally with an event file and print what it
# answers (`make invoke FN=fn-api EVENT=events/appsync/x.json`).
#
#   scripts/invoke.sh FN EVENT
#
# Uses DATABASE_URL when it is set; otherwise starts a throwaway PostgreSQL
# (scripts/pg.sh). Either way it migrates and seeds the demo data
# (`calctl migrate`, `calctl seed-demo`: demo_provider / photographer in
# Europe/Berlin, next week and the fixed sample week every
# events/appsync payload names, see events/README.md). Then it runs
# `cargo lambda watch` on a free 127.0.0.1 port (installing cargo-lambda into
# .venv if missing), invokes FN with EVENT and stops everything it started.
#
# Exit code: 0 when the function answered, 1 when it returned a function
# error (errorType/errorMessage, printed as it came), 2 for bad arguments,
# other non-zero when something around it failed. fn-api answers
# {"data": ...}, or {"error": {"type", "message"}} for a refusal the caller
# caused (VALIDATION, CONFLICT, ...): an answer, so exit 0, with a note on
# stderr. Only INTERNAL is a function error.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LL_NAME=invoke
. scripts/lambda-local.sh

say() { printf 'invoke: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

[[ $# -eq 2 ]] || die "usage: $0 FN EVENT (e.g. $0 fn-api events/appsync/bookableSlots.json)"
fn=$1
event=$2
[[ -f $event ]] || die "no event file $event"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$event" 2>/dev/null || die "$event is not valid JSON"
CARGO=${CARGO:-cargo}
: "${FEED_BASE_URL:=https://feeds.example.invalid/feeds/}"
# The IAM roles fn-api trusts as services: the order service the
# events/appsync/*.iam-order-service.json samples sign as.
: "${SERVICE_ROLE_ARNS:=arn:aws:iam::123456789012:role/order-service}"
export FEED_BASE_URL SERVICE_ROLE_ARNS

tmp=$(mktemp -d -t cal-invoke.XXXXXX)
pgdir=
cleanup() {
    watch_stop
    [[ -z $pgdir ]] || scripts/pg.sh stop "$pgdir"
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ensure_cargo_lambda
# Built before the emulator starts, so that the invocation does not wait on
# a compile (the emulator runs `cargo run` with the same profile). Cargo's
# progress goes to stderr: the first build takes minutes.
say "building calctl and $fn (cargo build; several minutes the first time)"
"$CARGO" build -p calctl
"$CARGO" build -p "$fn"

if [[ -z ${DATABASE_URL:-} ]]; then
    # Its own mktemp: the server's user must be able to reach it.
    pgdir=$(mktemp -d -t cal-invoke-pg.XXXXXX)
    pgenv=$(scripts/pg.sh start "$pgdir")
    eval "$pgenv"
    say "throwaway PostgreSQL at $DATABASE_URL"
else
    say "using DATABASE_URL from the environment"
fi
export DATABASE_URL
say "migrating and seeding the demo data (calctl migrate, calctl seed-demo)"
"$CARGO" run --quiet -p calctl -- migrate >&2
"$CARGO" run --quiet -p calctl -- seed-demo >&2

port=$(free_port)
watch_start "$fn" "$port" "$tmp/watch.log"
say "cargo lambda watch on 127.0.0.1:$port; invoking $fn with $event"

rc=0
if command -v curl >/dev/null; then
    # The raw answer: the result, or {"errorType","errorMessage"} with HTTP
    # 500 for a function error (real Lambda: 200 + X-Amz-Function-Error).
    status=$(curl -sS -o "$tmp/response" -w '%{http_code}' --max-time 600 \
        -H 'content-type: application/json' --data-binary "@$event" "$(invocations_url "$fn" "$port")") || rc=$?
    cat "$tmp/response" 2>/dev/null && echo
    ((rc == 0)) && [[ $status != 200 ]] && rc=1
    if ((rc == 0)); then
        refusal=$(python3 -c 'import json, sys
a = json.load(open(sys.argv[1]))
e = a.get("error") if isinstance(a, dict) else None
print(e["type"] if isinstance(e, dict) and "type" in e else "")' "$tmp/response" 2>/dev/null || true)
        [[ -z $refusal ]] || say "$fn refused the request with $refusal (an answer to the caller, not a function error)"
    fi
else
    cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$event" || rc=$?
fi
if ((rc != 0)); then
    say "$fn returned a function error (or the invocation failed); function log tail:"
    grep -v '^\s*$' "$tmp/watch.log" | tail -n 15 >&2 || true
    exit 1
fi
