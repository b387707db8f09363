#!/usr/bin/env python3
"""The Python side of `cargo bench -p cal-core --bench ics`.

    scripts/ics_bench.py FILE.ics FROM TO [ROUNDS] [PROVIDER_ZONE]

Reads FILE.ics (the bytes the Rust bench generated and imported), then times
parse (icalendar.Calendar.from_ical) + expansion
(recurring_ical_events.of(cal).between(FROM, TO)) + counting the busy
occurrences (those neither TRANSP:TRANSPARENT nor STATUS:CANCELLED, as the
Rust importer counts); FROM and TO are RFC 3339 instants. Median of ROUNDS
(default 3).

recurring-ical-events places DATE and floating values in the tzinfo of the
window it is given, so FROM and TO are expressed in PROVIDER_ZONE (an IANA
name, default UTC) before `between()`: the same instants, with all-day and
floating times read in the provider's zone as the Rust importer reads them.

Prints one JSON line: {"seconds": …, "runs": [...], "occurrences": …,
"icalendar": "…", "recurring_ical_events": "…"}.

Run with any python3: when not already inside the project venv (.venv), it
creates it if absent, installs `icalendar` and `recurring-ical-events` into it
when missing, and re-executes itself there. Nothing is installed elsewhere.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv")
VENV_PY = os.path.join(VENV, "bin", "python")


def say(msg):
    print(f"ics_bench.py: {msg}", file=sys.stderr, flush=True)


def ensure_venv():
    """Re-exec inside .venv with both packages present."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(VENV_PY):
        say(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    probe = subprocess.run([VENV_PY, "-c", "import icalendar, recurring_ical_events"], capture_output=True)
    if probe.returncode != 0:
        say("installing icalendar and recurring-ical-events into .venv")
        subprocess.run(
            [VENV_PY, "-m", "pip", "install", "--quiet", "icalendar", "recurring-ical-events"],
            check=True,
            stdout=sys.stderr,
        )
    os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__), *sys.argv[1:]])


def busy(event):
    """Whether an occurrence blocks time: not TRANSP:TRANSPARENT, not STATUS:CANCELLED."""
    transp = str(event.get("TRANSP", "")).strip().upper()
    status = str(event.get("STATUS", "")).strip().upper()
    return transp != "TRANSPARENT" and status != "CANCELLED"


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()

    from importlib.metadata import version

    import icalendar
    import recurring_ical_events

    path, start, end = sys.argv[1], sys.argv[2], sys.argv[3]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    zone = ZoneInfo(sys.argv[5] if len(sys.argv) > 5 else "UTC")
    start = datetime.fromisoformat(start.replace("Z", "+00:00")).astimezone(zone)
    end = datetime.fromisoformat(end.replace("Z", "+00:00")).astimezone(zone)
    with open(path, "rb") as f:
        body = f.read()

    runs, count = [], None
    for _ in range(max(1, rounds)):
        t0 = time.perf_counter()
        cal = icalendar.Calendar.from_ical(body)
        occurrences = recurring_ical_events.of(cal).between(start, end)
        n = sum(1 for e in occurrences if busy(e))
        runs.append(time.perf_counter() - t0)
        count = n
        del cal, occurrences
    print(
        json.dumps(
            {
                "seconds": statistics.median(runs),
                "runs": runs,
                "occurrences": count,
                "icalendar": version("icalendar"),
                "recurring_ical_events": version("recurring-ical-events"),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
