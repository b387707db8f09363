#!/usr/bin/env python3
"""The Lambda benchmarks of `make bench` (driven by scripts/lambda-bench.sh).

  lambda_bench.py warm URL [--requests N] [--warmup N]
      Warm latency of fn-api through the Lambda invocations URL of
      `cargo lambda watch` (URL = http://127.0.0.1:PORT/2015-03-31/functions/fn-api/invocations):
      puts a weekly rule for the bench provider, then times N bookableSlots and
      N createHold invocations (each hold on its own slot with its own
      idempotency key, so each one succeeds), one at a time on one connection.

  lambda_bench.py cold BIN [BIN...] [--runs N] [--first-response fn-api]
      Cold start of release binaries against a minimal Lambda runtime API
      written here (127.0.0.1, a free port): per run, the time from starting
      the process to its first GET .../invocation/next (init) and, for fn-api,
      to its first response to a bookableSlots event (cold start). The
      function process is killed after each run.

Standard library only. Everything listens on / talks to 127.0.0.1.
"""

import argparse
import copy
import datetime as dt
import http.client
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENTS = os.path.join(ROOT, "events", "appsync")
PROVIDER = "bench-prov"
ROLE = "photographer"


def load_event(name):
    with open(os.path.join(EVENTS, name + ".json")) as f:
        return json.load(f)


def as_provider(event, sub):
    """The event's identity, re-issued to another provider (same claims shape)."""
    ident = event["identity"]
    ident["sub"] = ident["username"] = sub
    ident["claims"]["sub"] = ident["claims"]["cognito:username"] = sub
    return event


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def pct(sorted_ms, p):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_ms) - 1, int(round(p / 100.0 * len(sorted_ms) + 0.5)) - 1))
    return sorted_ms[k]


class Invoker:
    """POSTs events to one invocations URL over a kept-alive connection."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        assert u.hostname == "127.0.0.1", "the bench only talks to 127.0.0.1"
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.sock = None

    def invoke(self, event, timeout=900):
        body = json.dumps(event).encode()
        # Head and body in one send(), on a TCP_NODELAY socket. http.client
        # sends them apart; cargo lambda watch then passes the event on to the
        # function's /next in two writes too, and the second waits for the
        # function's delayed ACK: ~40 ms (docs/performance.md).
        req = (f"POST {self.path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
               f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body
        for attempt in (1, 2):
            if self.sock is None:
                self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                t0 = time.perf_counter()
                self.sock.sendall(req)
                r = http.client.HTTPResponse(self.sock, method="POST")
                r.begin()
                data = r.read()
                ms = (time.perf_counter() - t0) * 1000.0
                if r.will_close:
                    self.close()
                return r.status, json.loads(data) if data else None, ms
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def check_ok(status, answer, what):
    """fn-api's answer: {"data": ...}, or {"error": ...} for a refusal (a
    normal return); a function error is errorType/errorMessage with HTTP 500.
    Returns the data."""
    if status != 200 or not isinstance(answer, dict) or "data" not in answer:
        sys.exit(f"lambda-bench: {what} failed: HTTP {status}: {json.dumps(answer)[:500]}")
    return answer["data"]


def summary(name, ms):
    s = sorted(ms)
    return {"name": name, "n": len(s), "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
            "max": s[-1], "mean": statistics.fmean(s)}


def warm(args):
    inv = Invoker(args.url)
    n, w = args.requests, args.warmup
    # The bench provider: every day 00:00-23:30 UTC, 30-minute bookings, so
    # that enough distinct slots exist for every createHold.
    rule = as_provider(load_event("putWeeklyRule"), PROVIDER)
    rule["arguments"] = {"userId": PROVIDER, "input": {
        "roleCode": ROLE, "weekdayMask": 127, "startLocal": "00:00", "endLocal": "23:30", "timezone": "UTC",
        "minDurationMin": 30, "leadTimeHours": 1, "bookingWindowDays": 60, "active": True}}
    status, answer, _ = inv.invoke(rule)
    check_ok(status, answer, "putWeeklyRule")

    day0 = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    slots_ev = load_event("bookableSlots")
    # One day the holds never touch: the read path measured on a steady calendar.
    probe_day = day0 + dt.timedelta(days=40)
    slots_ev["arguments"]["input"] = {"userId": PROVIDER, "roleCode": ROLE, "from": iso(probe_day),
                                      "to": iso(probe_day + dt.timedelta(days=1)), "durationMin": 60, "stepMin": 30}
    status, answer, _ = inv.invoke(slots_ev)
    answer = check_ok(status, answer, "bookableSlots")
    per_answer = len(answer.get("slots", []))
    if per_answer == 0:
        sys.exit(f"lambda-bench: bookableSlots found no slot on {probe_day:%F}: {json.dumps(answer)[:300]}")

    # Slots to hold: 30 minutes each on the 30-minute grid, none overlapping.
    need = n + w
    days = need // 40 + 2
    list_ev = copy.deepcopy(slots_ev)
    list_ev["arguments"]["input"] = {"userId": PROVIDER, "roleCode": ROLE, "from": iso(day0),
                                     "to": iso(day0 + dt.timedelta(days=days)), "durationMin": 30, "stepMin": 30}
    status, answer, _ = inv.invoke(list_ev)
    answer = check_ok(status, answer, "bookableSlots (slots to hold)")
    free = answer["slots"]
    if len(free) < need:
        sys.exit(f"lambda-bench: only {len(free)} slots to hold, {need} needed")

    results = []
    ms = []
    for i in range(w + n):
        status, answer, t = inv.invoke(slots_ev)
        check_ok(status, answer, "bookableSlots")
        if i >= w:
            ms.append(t)
    results.append(summary(f"bookableSlots (1 day, {per_answer} slots)", ms))

    hold_ev = load_event("createHold")
    run = uuid.uuid4().hex[:8]
    ms = []
    for i in range(w + n):
        slot = free[i]
        ev = copy.deepcopy(hold_ev)
        ev["arguments"]["input"] = {"userId": PROVIDER, "roleCode": ROLE, "start": slot["start"], "end": slot["end"],
                                    "kind": "CHECKOUT", "mode": "INSTANT", "ttlMin": 30, "stepMin": 30,
                                    "idempotencyKey": f"bench-{run}-{i}"}
        status, answer, t = inv.invoke(ev)
        answer = check_ok(status, answer, f"createHold #{i} ({slot['start']})")
        if answer.get("status") != "ACTIVE":
            sys.exit(f"lambda-bench: createHold #{i} is not ACTIVE: {json.dumps(answer)[:300]}")
        if i >= w:
            ms.append(t)
    results.append(summary("createHold (distinct slots)", ms))

    print(f"warm latency through cargo lambda watch (invocations URL, one connection, {w} warm-up + {n} each), ms:")
    print(f"  {'operation':<34} {'n':>4} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'mean':>7}  target p50 <= 10")
    for r in results:
        verdict = "ok" if r["p50"] <= 10 else "OVER"
        print(f"  {r['name']:<34} {r['n']:>4} {r['p50']:7.2f} {r['p90']:7.2f} {r['p99']:7.2f} {r['max']:7.2f} {r['mean']:7.2f}  {verdict}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


# --- cold start: a minimal runtime API ---------------------------------------

class Runtime(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.event = json.dumps(event).encode()
        self.reset()

    def handle_error(self, request, client_address):
        # A killed function leaves its held /next connection to reset: expected.
        pass

    def reset(self):
        self.lock = threading.Lock()
        self.served = False
        self.first_next = None
        self.first_result = None
        self.result_kind = None
        self.result_body = None
        self.done = threading.Event()
        self.stop = threading.Event()


class RuntimeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        if not self.path.startswith("/2018-06-01/runtime/invocation/next"):
            return self._reply(404)
        now = time.perf_counter()
        with srv.lock:
            if srv.first_next is None:
                srv.first_next = now
            first = not srv.served
            srv.served = True
        if not first:
            # The function waits for its next event: hold it until the run ends.
            srv.stop.wait(60)
            return self._reply(410)
        deadline = int((time.time() + 30) * 1000)
        self._reply(200, srv.event, [
            ("content-type", "application/json"),
            ("lambda-runtime-aws-request-id", "bench-" + uuid.uuid4().hex),
            ("lambda-runtime-deadline-ms", str(deadline)),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench"),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"),
        ])

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        now = time.perf_counter()
        kind = "response" if self.path.endswith("/response") else "error"
        with srv.lock:
            if srv.first_result is None:
                srv.first_result, srv.result_kind, srv.result_body = now, kind, body
        self._reply(202, b'{"status":"OK"}', [("content-type", "application/json")])
        srv.done.set()


def cold(args):
    slots_ev = load_event("bookableSlots")
    day = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=42)
    slots_ev["arguments"]["input"] = {"userId": PROVIDER, "roleCode": ROLE, "from": iso(day),
                                      "to": iso(day + dt.timedelta(days=1)), "durationMin": 60, "stepMin": 30}
    rows = []
    for path in args.bins:
        name = os.path.basename(path)
        with_response = name in args.first_response
        env = dict(os.environ)
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "_HANDLER": "bootstrap",
        })
        for spec in args.env:
            target, _, kv = spec.partition(":")
            if target == name:
                k, _, v = kv.partition("=")
                env[k] = v
        inits, firsts, errors = [], [], []
        for run in range(args.runs):
            # A runtime API (and port) per run: a request the previous, killed
            # process had already sent must not count for this one.
            srv = Runtime(slots_ev if with_response else {})
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{srv.server_address[1]}"
            log = open(os.path.join(args.log_dir, f"{name}.{run}.log"), "wb") if args.log_dir else subprocess.DEVNULL
            t0 = time.perf_counter()
            proc = subprocess.Popen([path], env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                deadline = time.perf_counter() + 30
                while srv.first_next is None and proc.poll() is None and time.perf_counter() < deadline:
                    time.sleep(0.0005)
                if srv.first_next is None:
                    errors.append(f"run {run}: no /next (exit {proc.poll()})")
                    continue
                inits.append((srv.first_next - t0) * 1000.0)
                if with_response:
                    if not srv.done.wait(30):
                        errors.append(f"run {run}: no response within 30 s")
                        continue
                    firsts.append((srv.first_result - t0) * 1000.0)
                    if srv.result_kind != "response" or b'"data"' not in (srv.result_body or b""):
                        errors.append(f"run {run}: {srv.result_kind}: {srv.result_body[:300]!r}")
            finally:
                srv.stop.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
                if log is not subprocess.DEVNULL:
                    log.close()
                srv.shutdown()
                srv.server_close()
        rows.append((name, inits, firsts, errors, with_response))

    print(f"cold start of release binaries (x86_64 host) against a local runtime API, {args.runs} runs each, ms:")
    print(f"  {'binary':<20} {'init p50':>9} {'init max':>9} {'first resp p50':>15} {'first resp max':>15}  targets: init <= 50, cold first response <= 100")
    bad = False
    for name, inits, firsts, errors, with_response in rows:
        i50 = f"{statistics.median(inits):9.1f}" if inits else f"{'-':>9}"
        imax = f"{max(inits):9.1f}" if inits else f"{'-':>9}"
        f50 = f"{statistics.median(firsts):15.1f}" if firsts else f"{'-':>15}"
        fmax = f"{max(firsts):15.1f}" if firsts else f"{'-':>15}"
        verdict = "ok"
        if not inits or statistics.median(inits) > 50 or (with_response and (not firsts or statistics.median(firsts) > 100)):
            verdict = "OVER"
        if errors:
            verdict = "ERROR"
            bad = True
        print(f"  {name:<20} {i50} {imax} {f50} {fmax}  {verdict}")
        for e in errors[:3]:
            print(f"    {name}: {e}")
    if bad:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("warm")
    w.add_argument("url")
    w.add_argument("--requests", type=int, default=300)
    w.add_argument("--warmup", type=int, default=30)
    w.add_argument("--json")
    c = sub.add_parser("cold")
    c.add_argument("bins", nargs="+")
    c.add_argument("--runs", type=int, default=10)
    c.add_argument("--first-response", action="append", default=[])
    c.add_argument("--log-dir")
    c.add_argument("--env", action="append", default=[], metavar="BIN:KEY=VALUE",
                   help="an environment variable for one binary only")
    a = p.parse_args()
    warm(a) if a.cmd == "warm" else cold(a)


if __name__ == "__main__":
    main()
