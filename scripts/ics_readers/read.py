"""Reads .ics files with Python `icalendar` and compares them with a manifest
(see scripts/ics-readers.sh). Prints one summary line; every disagreement goes
to stderr, naming the file and the field. Exit 1 on any."""

import json
import sys
from datetime import date, datetime, timezone

import icalendar

READER = f"python icalendar {icalendar.__version__}"


def utc(value):
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return f"floating {value.isoformat()}"
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return f"date {value.isoformat()}"
    return repr(value)


def lines_ok(path, raw, problems):
    """RFC 5545 §3.1: CRLF line ends, at most 75 octets a line."""
    if not raw.endswith(b"\r\n"):
        problems.append(f"{path}: does not end with CRLF")
    for n, line in enumerate(raw.split(b"\r\n")[:-1], 1):
        if b"\n" in line or b"\r" in line:
            problems.append(f"{path}: line {n}: bare CR or LF")
        if len(line) > 75:
            problems.append(f"{path}: line {n}: {len(line)} octets, over 75")


def check(entry, problems):
    path = entry["path"]
    with open(path, "rb") as f:
        raw = f.read()
    lines_ok(path, raw, problems)
    try:
        calendars = icalendar.Calendar.from_ical(raw, multiple=True)
    except Exception as e:  # the reader's own words are the point here
        problems.append(f"{path}: does not parse: {e}")
        return 0
    if len(calendars) != 1:
        problems.append(f"{path}: {len(calendars)} VCALENDARs, expected 1")
        return 0
    cal = calendars[0]
    for component in cal.walk():
        for prop, err in getattr(component, "errors", []):
            problems.append(f"{path}: {component.name} {prop}: {err}")

    def same(what, got, want):
        if got != want:
            problems.append(f"{path}: {what}: got {got!r}, expected {want!r}")

    method = cal.get("METHOD")
    same("METHOD", None if method is None else str(method), entry.get("method"))
    if entry.get("calname") is not None:
        same("X-WR-CALNAME", str(cal.get("X-WR-CALNAME")), entry["calname"])
    events = cal.walk("VEVENT")
    same("VEVENT count", len(events), len(entry["events"]))
    for i, (got, want) in enumerate(zip(events, entry["events"])):
        tag = f"VEVENT {i} ({want['uid']})"
        same(f"{tag} UID", str(got.get("UID")), want["uid"])
        same(f"{tag} SEQUENCE", int(got.get("SEQUENCE", 0)), want["sequence"])
        same(f"{tag} DTSTART", utc(got.decoded("DTSTART")), want["start"])
        same(f"{tag} DTEND", utc(got.decoded("DTEND")), want["end"])
        same(f"{tag} STATUS", str(got.get("STATUS")), want["status"])
        if "DTSTAMP" not in got:
            problems.append(f"{path}: {tag}: no DTSTAMP")
    return len(events)


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    problems = []
    events = sum(check(entry, problems) for entry in manifest["files"])
    for p in problems:
        print(f"ics-readers: {READER}: {p}", file=sys.stderr)
    verdict = "FAILED" if problems else "ok"
    print(f"ics-readers: {READER}: {len(manifest['files'])} files, {events} events: {verdict}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
