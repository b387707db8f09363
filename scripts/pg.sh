#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and the demo.
#
#   scripts/pg.sh start DIR   create a cluster in DIR, start it on a free port
#                             of 127.0.0.1, write DIR/env and print
#                             `export DATABASE_URL=…` and `DATABASE_TEST_CA=…`
#                             (eval-friendly; nothing else goes to stdout)
#   scripts/pg.sh stop DIR    stop it and remove DIR
#
# It never touches the machine's own server (5432): the cluster has its own
# data directory, port and socket directory. Durability is off (fsync,
# synchronous_commit, full_page_writes): the data is thrown away anyway.
# It offers TLS (optional for clients) with a certificate for localhost and
# 127.0.0.1 signed by a CA made for it; the start also prints
# `export DATABASE_TEST_CA=DIR/ca.pem` for the tests that verify it.
set -euo pipefail

say() { printf 'pg.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
marker=.cal-throwaway-pg

is_root() { [[ $(id -u) -eq 0 ]]; }

# Server binaries: Debian keeps them off PATH in /usr/lib/postgresql/N/bin.
find_bindir() {
    local d best=""
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] || continue
        if [[ -z $best ]] || (( $(basename "$(dirname "$d")") > $(basename "$(dirname "$best")") )); then
            best=$d
        fi
    done
    if [[ -z $best ]] && command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        best=$(dirname "$(readlink -f "$(command -v initdb)")")
    fi
    printf '%s' "$best"
}

ensure_server_binaries() {
    bindir=$(find_bindir)
    [[ -n $bindir ]] && return
    is_root || die "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (Debian: apt-get install -y postgresql) and retry"
    say "PostgreSQL server binaries not found: installing Debian's postgresql package (apt-get)…"
    # Output goes to stderr: stdout carries only the export line.
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    bindir=$(find_bindir)
    [[ -n $bindir ]] || die "installed postgresql but still found no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
}

# initdb and postgres refuse to run as root: as root, run them as `postgres`.
as_owner() {
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# A CA and a server certificate it signs, for localhost and 127.0.0.1 (the
# server reads the key as its owner, which must be the only reader).
make_certificates() {
    command -v openssl >/dev/null || die "openssl not found (Debian: apt-get install -y openssl); the server's TLS certificate is made with it"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cal throwaway CA" \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
        -extfile "$dir/san.ext" -out "$dir/server.pem" 2>/dev/null
    chmod 600 "$dir/server.key"
    if is_root; then chown postgres: "$dir"/server.* "$dir"/ca.*; fi
}

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        echo $(( 20000 + RANDOM % 40000 ))
    fi
}

start() {
    ensure_server_binaries
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ -z $(ls -A "$dir") ]] || die "$dir is not empty; give an empty or new directory"
    touch "$dir/$marker"
    if is_root; then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user to run the server as (apt-get install -y postgresql creates it)"
        chown -R postgres: "$dir"
        runuser -u postgres -- test -w "$dir" ||
            die "user postgres cannot write $dir (a parent directory is not searchable by it); use a directory under /tmp, e.g. \$(mktemp -d)"
    fi

    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U app --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed (log above)"; }

    make_certificates

    # The port is free when chosen but could be taken before the server binds
    # it: retry with another one.
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -s \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -k '$dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c ssl=on -c ssl_cert_file='$dir/server.pem' -c ssl_key_file='$dir/server.key'" \
            start >&2; then
            local url="postgres://app@127.0.0.1:$port/postgres"
            printf 'DATABASE_URL=%s\nDATABASE_TEST_CA=%s\n' "$url" "$dir/ca.pem" >"$dir/env"
            printf "export DATABASE_URL='%s'\n" "$url"
            printf "export DATABASE_TEST_CA='%s'\n" "$dir/ca.pem"
            return
        fi
        say "start on port $port failed (attempt $attempt); server log tail:"
        tail -n 5 "$dir/server.log" >&2 || true
    done
    die "could not start PostgreSQL in $dir (see $dir/server.log)"
}

stop() {
    [[ -d $dir ]] || { say "$dir does not exist; nothing to stop"; return; }
    # A start that failed before creating anything leaves an empty directory.
    if [[ -z $(ls -A "$dir") ]]; then rmdir -- "$dir"; return; fi
    # Refuse to delete a directory this script did not create.
    [[ -e $dir/$marker ]] || die "$dir was not made by '$0 start'; not touching it"
    if [[ -f $dir/data/postmaster.pid ]]; then
        bindir=$(find_bindir)
        [[ -n $bindir ]] || die "pg_ctl not found; cannot stop the server in $dir"
        as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -s stop >&2 ||
            say "pg_ctl stop failed; removing $dir anyway"
    fi
    rm -rf -- "$dir"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
