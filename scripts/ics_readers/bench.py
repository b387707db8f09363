"""Times Python `icalendar` building and serialising the events of a JSON file
(written by crates/fn-feed/benches/feed.rs), for comparison with our writer.
Prints one line with the best of N rounds."""

import json
import sys
import time
from datetime import datetime, timezone

import icalendar


def instant(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def build(data):
    cal = icalendar.Calendar()
    cal.add("prodid", "-//cal-suite//booking calendar//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", data["calname"])
    cal.add("name", data["calname"])
    stamp = instant(data["dtstamp"])
    for e in data["events"]:
        ev = icalendar.Event()
        ev.add("uid", e["uid"])
        ev.add("sequence", e["sequence"])
        ev.add("dtstamp", stamp)
        ev.add("dtstart", instant(e["start"]))
        ev.add("dtend", instant(e["end"]))
        ev.add("summary", e["summary"])
        ev.add("status", e["status"])
        ev.add("transp", "OPAQUE")
        cal.add_component(ev)
    return cal


def main():
    with open(sys.argv[1]) as f:
        data = json.load(f)
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    best_build = best_write = float("inf")
    size = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        cal = build(data)
        t1 = time.perf_counter()
        body = cal.to_ical()
        t2 = time.perf_counter()
        best_build, best_write, size = min(best_build, t1 - t0), min(best_write, t2 - t1), len(body)
    print(
        f"python icalendar {icalendar.__version__}: {len(data['events'])} events: "
        f"build {best_build * 1000:.1f} ms + to_ical {best_write * 1000:.1f} ms = "
        f"{(best_build + best_write) * 1000:.1f} ms (best of {rounds}), {size} bytes"
    )


if __name__ == "__main__":
    main()
