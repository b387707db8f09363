# shellcheck shell=bash
# Helpers for running Lambda functions locally under `cargo lambda watch`.
# Sourced by scripts/invoke.sh and scripts/e2e.sh, not run on its own.
#
#   ensure_cargo_lambda          cargo-lambda in .venv (pip, from PyPI), on PATH
#   free_port                    a free TCP port on 127.0.0.1
#   watch_start PKG PORT LOG     `cargo lambda watch` for one package on
#                                127.0.0.1:PORT in its own process group; sets
#                                WATCH_PID; the function inherits the environment
#   watch_stop                   stop that process group (and the function in it)
#   wait_port PORT PID WHAT LOG  wait until 127.0.0.1:PORT accepts connections
#   invocations_url FN PORT      the emulator's Invoke URL for function FN
#
# Expects to run from the repository root (the callers cd there).

LAMBDA_VENV=${LAMBDA_VENV:-.venv}
# The version TOOLING.md was checked with; any 1.x keeps the same CLI.
CARGO_LAMBDA_SPEC=${CARGO_LAMBDA_SPEC:-'cargo-lambda>=1.9,<2'}

_ll_say() { printf '%s: %s\n' "${LL_NAME:-lambda-local}" "$*" >&2; }

ensure_cargo_lambda() {
    if [[ ! -x $LAMBDA_VENV/bin/cargo-lambda ]]; then
        if [[ ! -x $LAMBDA_VENV/bin/pip ]]; then
            python3 -m venv "$LAMBDA_VENV" ||
                { _ll_say "python3 -m venv failed (Debian: apt-get install -y python3-venv)"; return 1; }
        fi
        _ll_say "installing cargo-lambda into $LAMBDA_VENV (pip install '$CARGO_LAMBDA_SPEC')"
        "$LAMBDA_VENV/bin/pip" install --quiet --disable-pip-version-check "$CARGO_LAMBDA_SPEC" >&2
    fi
    # `cargo lambda` finds the cargo-lambda binary on PATH.
    PATH="$(cd "$LAMBDA_VENV/bin" && pwd):$PATH"
    export PATH
    cargo lambda -V >/dev/null || { _ll_say "cargo lambda -V failed after installing cargo-lambda"; return 1; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT PID WHAT LOG [SECONDS]
wait_port() {
    local port=$1 pid=$2 what=$3 log=$4 limit=${5:-120} i
    for ((i = 0; i < limit * 10; i++)); do
        port_open "$port" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            _ll_say "$what exited before listening on 127.0.0.1:$port; its log:"
            tail -n 40 "$log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    _ll_say "$what did not listen on 127.0.0.1:$port within ${limit}s; its log:"
    tail -n 40 "$log" >&2 || true
    return 1
}

# watch_start PKG PORT LOG
watch_start() {
    local pkg=$1 port=$2 log=$3
    # -A: without it the emulator listens on every interface.
    # --ignore-changes: other work in the tree must not restart the function
    # in the middle of a run. setsid: its own process group, so that
    # watch_stop also ends the `cargo run` and the function it spawned.
    setsid cargo lambda watch -A 127.0.0.1 -P "$port" --ignore-changes -p "$pkg" >"$log" 2>&1 </dev/null &
    WATCH_PID=$!
    wait_port "$port" "$WATCH_PID" "cargo lambda watch" "$log" 120
}

watch_stop() {
    [[ -n ${WATCH_PID:-} ]] || return 0
    stop_group "$WATCH_PID"
    WATCH_PID=
}

# stop_group PID: TERM the process group PID leads (made with setsid), then
# KILL whatever is left of it after 5 s.
stop_group() {
    local pid=$1 i
    kill -TERM -- "-$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
}

invocations_url() {
    printf 'http://127.0.0.1:%s/2015-03-31/functions/%s/invocations' "$2" "$1"
}
