#!/usr/bin/env bash
# The GraphQL end-to-end test (`make e2e`): e2e/api.test.js against
# amplify-appsync-simulator (e2e/simulator.js, infra/schema.graphql) whose
# resolvers invoke fn-api under `cargo lambda watch`, on Postgres.
#
#   scripts/e2e.sh
#
# Installs what it is missing: e2e/node_modules (npm ci, from
# e2e/package-lock.json) and cargo-lambda (.venv, pip). Database: with
# DATABASE_URL set it creates a database of its own on that server (psql) and
# drops it afterwards; otherwise a throwaway cluster (scripts/pg.sh). Every
# server it starts listens on a free 127.0.0.1 port, and is checked to; all
# are stopped on exit, pass or fail. The exit code is the test runner's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
LL_NAME=e2e
. scripts/lambda-local.sh

say() { printf 'e2e: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

CARGO=${CARGO:-cargo}
FN=fn-api
: "${FEED_BASE_URL:=https://feeds.example.invalid/feeds/}"
export FEED_BASE_URL
# The simulator signs IAM requests as assumed-role/order-service (simulator.js):
# the one service fn-api trusts here.
: "${SERVICE_ROLE_ARNS:=arn:aws:iam::123456789012:role/order-service}"
export SERVICE_ROLE_ARNS
# aws-sdk v2 (a dependency of the simulator) prints a notice on load.
export AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    die "node and npm not found (Debian: apt-get install -y nodejs npm; Node 18 or later)"
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 18)) || die "Node $(node -v) is too old: the test needs Node 18 or later (fetch, node:test)"

started=$SECONDS
tmp=$(mktemp -d -t cal-e2e.XXXXXX)
pgdir=
own_db=
admin_url=
SIM_PID=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=$?
    if [[ -n $SIM_PID ]]; then stop_group "$SIM_PID"; fi
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

# Dependencies --------------------------------------------------------------
if [[ ! -d e2e/node_modules ]] || [[ e2e/package-lock.json -nt e2e/node_modules/.package-lock.json ]]; then
    say "installing e2e/node_modules (npm ci)"
    (cd e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
ensure_cargo_lambda
# Built before the emulator starts, so that the first invocation does not
# wait on a compile (the emulator runs `cargo run` with the same profile).
say "building calctl and $FN (cargo build; several minutes the first time)"
"$CARGO" build -p calctl
"$CARGO" build -p "$FN"

# Database ------------------------------------------------------------------
if [[ -n ${DATABASE_URL:-} ]]; then
    if command -v psql >/dev/null && [[ $DATABASE_URL =~ ^postgres(ql)?:// ]]; then
        admin_url=$DATABASE_URL
        own_db="cal_e2e_$(date +%s)_$$"
        psql -q -X -v ON_ERROR_STOP=1 "$admin_url" -c "create database \"$own_db\"" >/dev/null ||
            { own_db=; die "could not create a database on the server of DATABASE_URL"; }
        DATABASE_URL=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$admin_url" "$own_db")
        say "database $own_db on the server of DATABASE_URL"
    else
        say "using DATABASE_URL as it is (no psql to create a database of our own); the test's ids are unique per run"
    fi
else
    pgdir=$(mktemp -d -t cal-e2e-pg.XXXXXX)
    pgenv=$(scripts/pg.sh start "$pgdir")
    eval "$pgenv"
    say "throwaway PostgreSQL at $DATABASE_URL"
fi
export DATABASE_URL
"$CARGO" run --quiet -p calctl -- migrate >&2

# The function --------------------------------------------------------------
lport=$(free_port)
watch_start "$FN" "$lport" "$tmp/watch.log"
lambda_url=$(invocations_url "$FN" "$lport")
# The first invocation spawns the function (`cargo run`, which may wait for
# the cargo lock): do it now, with a long timeout, not inside a test. An
# unknown field answers VALIDATION without touching the database.
warm=$(node -e '
  const ev = { arguments: {}, identity: null, source: null, request: { headers: {} }, prev: null, stash: {},
               info: { fieldName: "__warmup", parentTypeName: "Query", variables: {}, selectionSetList: [], selectionSetGraphQL: "" } };
  fetch(process.argv[1], { method: "POST", body: JSON.stringify(ev), signal: AbortSignal.timeout(900000) })
    .then(async (r) => console.log(r.status, await r.text()))
    .catch((e) => { console.log("failed", e.message); process.exit(1); });
' "$lambda_url") || { tail -n 30 "$tmp/watch.log" >&2; die "warm-up invocation of $FN failed: $warm"; }
# A refusal is an answer ({"error": ...}), not a function error.
[[ $warm == 200* && $warm == *'"type":"VALIDATION"'* ]] ||
    { tail -n 30 "$tmp/watch.log" >&2; die "unexpected warm-up answer from $FN: $warm"; }
say "$FN is up under cargo lambda watch at 127.0.0.1:$lport"

# The API -------------------------------------------------------------------
sport=$(free_port)
wport=$(free_port)
while [[ $wport == "$sport" ]]; do wport=$(free_port); done
setsid node e2e/simulator.js --port "$sport" --ws-port "$wport" --lambda-url "$lambda_url" >"$tmp/simulator.log" 2>&1 </dev/null &
SIM_PID=$!
wait_port "$sport" "$SIM_PID" "the AppSync simulator" "$tmp/simulator.log" 60
for ((i = 0; i < 100; i++)); do
    grep -q '^simulator: ready' "$tmp/simulator.log" && break
    sleep 0.1
done
grep -q '^simulator: ready' "$tmp/simulator.log" || { cat "$tmp/simulator.log" >&2; die "the simulator did not come up"; }
grep '^simulator:' "$tmp/simulator.log" | sed 's/^/e2e: /' >&2

# Nothing we started may listen beyond loopback.
if command -v ss >/dev/null; then
    pids=$(pgrep -g "$WATCH_PID,$SIM_PID" | paste -sd'|')
    exposed=$(ss -ltnpH | grep -E "pid=($pids)," | awk '$4 !~ /^127\.0\.0\.1:/' || true)
    [[ -z $exposed ]] || die "a server listens beyond 127.0.0.1: $exposed"
    say "listening: $(ss -ltnpH | grep -E "pid=($pids)," | awk '{print $4}' | sort | paste -sd' ') (loopback only)"
else
    say "ss not found (iproute2): skipped the loopback-only check"
fi

# The test ------------------------------------------------------------------
say "set up in $((SECONDS - started)) s; running e2e/api.test.js"
rc=0
GRAPHQL_URL="http://127.0.0.1:$sport/graphql" node --test --test-reporter=spec e2e/api.test.js || rc=$?
if ((rc != 0)); then
    say "FAILED (exit $rc); simulator log tail:"
    tail -n 40 "$tmp/simulator.log" >&2 || true
    say "function log tail:"
    grep -v '^\s*$' "$tmp/watch.log" | tail -n 40 >&2 || true
fi
exit "$rc"
