#!/usr/bin/env bash
# A throwaway moto server (local AWS: DynamoDB, EventBridge, SQS, ...) for tests.
#
#   scripts/moto.sh start DIR   start moto_server on a free port of 127.0.0.1,
#                               write DIR/env and print the exports
#                               (AWS_ENDPOINT_URL, dummy credentials,
#                               AWS_REGION; eval-friendly: nothing else goes
#                               to stdout)
#   scripts/moto.sh stop DIR    stop it and remove DIR
#
# moto[server] is installed into the project's .venv when missing.
set -euo pipefail

say() { printf 'moto.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[[ $# -eq 2 ]] || die "usage: $0 start|stop DIR"
cmd=$1
dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv
marker=.cal-throwaway-moto
PYTHON=${PYTHON:-python3}

ensure_moto() {
    [[ -x $venv/bin/moto_server ]] && return
    if [[ ! -x $venv/bin/pip ]]; then
        "$PYTHON" -m venv "$venv" >&2 || die "$PYTHON -m venv failed (Debian: apt-get install -y python3-venv)"
    fi
    say "installing moto[server] into $venv…"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2 || die "pip install 'moto[server]' failed"
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    ensure_moto
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty; give an empty or new directory"
    touch "$dir/$marker"
    local port attempt i
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        # setsid: its own process group, so stop ends moto and nothing else.
        setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 </dev/null &
        echo $! >"$dir/pid"
        for i in $(seq 1 100); do
            if "$PYTHON" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; then
                {
                    printf 'AWS_ENDPOINT_URL=http://127.0.0.1:%s\n' "$port"
                    printf 'AWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\nAWS_REGION=us-east-1\n'
                } >"$dir/env"
                sed 's/^/export /' "$dir/env"
                return
            fi
            kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
            sleep 0.1
        done
        say "moto did not come up on port $port (attempt $attempt); log tail:"
        tail -n 5 "$dir/moto.log" >&2 || true
        kill -- "$(cat "$dir/pid")" 2>/dev/null || true
    done
    die "could not start moto (see $dir/moto.log)"
}

stop() {
    [[ -d $dir ]] || { say "$dir does not exist; nothing to stop"; return; }
    [[ -e $dir/$marker ]] || die "$dir was not made by '$0 start'; not touching it"
    if [[ -f $dir/pid ]]; then
        local pid
        pid=$(cat "$dir/pid")
        kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    fi
    rm -rf -- "$dir"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop DIR" ;;
esac
