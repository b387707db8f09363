#!/usr/bin/env bash
# Two independent readers for the .ics files we write (SEMANTICS.md §7):
# Python `icalendar` (in the project venv .venv) and Node `ical.js` (in
# tools/node_modules, pinned by tools/package-lock.json). Each is installed
# here when missing; nothing is installed outside the project.
#
#   scripts/ics-readers.sh install
#   scripts/ics-readers.sh check MANIFEST.json
#       every file the manifest lists must parse in both readers, as one
#       VCALENDAR with the expected METHOD (and X-WR-CALNAME, if given) and
#       exactly the expected VEVENTs, in order: UID, SEQUENCE, DTSTART and
#       DTEND (as UTC), STATUS. Manifest:
#       {"files": [{"path": "/abs/x.ics", "method": "REQUEST", "calname": null,
#                   "events": [{"uid": "…", "sequence": 0, "start": "2030-03-04T13:00:00Z",
#                               "end": "…", "status": "CONFIRMED"}]}]}
#   scripts/ics-readers.sh bench-python EVENTS.json [ROUNDS]
#       time icalendar building and serialising the events of EVENTS.json
#       ({"calname": …, "dtstamp": …, "events": [{uid, sequence, start, end,
#       summary, status}]}), best of ROUNDS (default 5)
#
# Exit status: 0 all good, 1 a reader disagreed, 2 usage or install failure.
set -euo pipefail

say() { printf 'ics-readers: %s\n' "$*" >&2; }
die() { say "$*"; exit 2; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/.venv
tools=$root/tools
here=$root/scripts/ics_readers
PYTHON=${PYTHON:-python3}
# Pinned like the Makefile pins cfn-lint: a major version, checked to work.
ICALENDAR_SPEC='icalendar>=7.3,<8'

have_python_reader() { [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import icalendar' 2>/dev/null; }
have_node_reader() { [[ -f $tools/node_modules/ical.js/package.json ]]; }

install() {
    have_python_reader && have_node_reader && return 0
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for ical.js (Debian: apt-get install -y nodejs npm)"
    # Tests call this in parallel: one installs, the others wait and find it done.
    exec 9>"$tools/.install.lock"
    flock 9
    if ! have_python_reader; then
        if [[ ! -x $venv/bin/python ]]; then
            say "creating $venv"
            "$PYTHON" -m venv "$venv" >&2 || die "$PYTHON -m venv failed (Debian: apt-get install -y python3-venv)"
        fi
        say "installing $ICALENDAR_SPEC into $venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$ICALENDAR_SPEC" >&2 || die "pip install $ICALENDAR_SPEC failed"
    fi
    if ! have_node_reader; then
        say "installing ical.js into $tools/node_modules (npm ci)"
        (cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in $tools failed"
    fi
    flock -u 9
}

cmd=${1:-}
case $cmd in
    install)
        install
        ;;
    check)
        [[ $# -eq 2 && -f $2 ]] || die "usage: $0 check MANIFEST.json"
        install
        rc=0
        "$venv/bin/python" "$here/read.py" "$2" || rc=1
        node "$here/read.mjs" "$2" || rc=1
        exit $rc
        ;;
    bench-python)
        [[ $# -ge 2 && -f $2 ]] || die "usage: $0 bench-python EVENTS.json [ROUNDS]"
        install
        exec "$venv/bin/python" "$here/bench.py" "$2" "${3:-5}"
        ;;
    *)
        die "usage: $0 install | check MANIFEST.json | bench-python EVENTS.json [ROUNDS]"
        ;;
esac
