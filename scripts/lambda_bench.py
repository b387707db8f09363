#!/usr/bin/env python3
"""The Lambda benchmarks of `make bench` (driven by scripts/lambda-bench.sh).

  lambda_bench.py warm --bin FN_API [--log FILE] [--requests N] [--warmup N] [--target-p99 MS]
      Warm latency of one long-lived fn-api process under the minimal Lambda
      runtime API below (class Runtime): puts a weekly rule for the bench
      provider, then times N bookableSlots and N createHold invocations (each
      hold on its own slot with its own idempotency key, so each one
      succeeds), one at a time. A call is timed from handing the event out on
      GET .../invocation/next to receiving its POST .../response. Prints
      p50/p90/p99/max, fn-api's run-queue wait in the slow calls, and a
      verdict against the p99 target (10 ms).

  lambda_bench.py warm --url URL [...]
      The same through an invocations URL, e.g. of `cargo lambda watch`
      (http://127.0.0.1:PORT/2015-03-31/functions/fn-api/invocations), timed
      at the client, one connection.

  lambda_bench.py cold BIN [BIN...] [--runs N] [--first-response fn-api]
      Cold start of release binaries against the same runtime API
      (127.0.0.1, a free port): per run, the time from starting
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
import queue
import re
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


def summary(name, ms, waits=None):
    s = sorted(ms)
    r = {"name": name, "n": len(s), "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
         "max": s[-1], "mean": statistics.fmean(s)}
    if waits and None not in waits:
        # The same calls with fn-api's run-queue wait taken out: what is left
        # when the tail is other processes' CPU use on a shared machine.
        net = sorted(max(0.0, t - w) for t, w in zip(ms, waits))
        r["p99_net_of_cpu_wait"] = pct(net, 99)
        r["calls_over_10ms"] = sum(t > 10 for t in ms)
        r["their_median_cpu_wait"] = statistics.median([w for t, w in zip(ms, waits) if t > 10] or [0.0])
    return r


def warm(args):
    if args.url:
        inv, how = Invoker(args.url), "through the invocations URL (cargo lambda watch), one connection"
    else:
        inv = RuntimeInvoker(args.bin, args.log)
        how = f"through the project's runtime API, one {os.path.basename(args.bin)} process"
    try:
        results = warm_runs(args, inv)
    finally:
        if isinstance(inv, RuntimeInvoker):
            inv.close()
    n, w = args.requests, args.warmup
    print(f"warm latency {how}, {w} warm-up + {n} each, ms:")
    print(f"  {'operation':<34} {'n':>4} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} {'mean':>7}  target p99 <= {args.target_p99:g}")
    over = []
    for r in results:
        verdict = "ok" if r["p99"] <= args.target_p99 else "OVER"
        if verdict != "ok":
            over.append(r["name"].split()[0])
        print(f"  {r['name']:<34} {r['n']:>4} {r['p50']:7.2f} {r['p90']:7.2f} {r['p99']:7.2f} {r['max']:7.2f} {r['mean']:7.2f}  {verdict}")
        if r.get("calls_over_10ms"):
            print(f"    {r['calls_over_10ms']} calls over 10 ms, median run-queue wait (fn-api, its Postgres backend) in them "
                  f"{r['their_median_cpu_wait']:.1f} ms; p99 net of that wait {r['p99_net_of_cpu_wait']:.2f}")
    if isinstance(inv, RuntimeInvoker):
        q = summary("", inv.queued)
        print(f"  (from submit, incl. any wait for the function's next /next, all {q['n']} calls: "
              f"p50 {q['p50']:.2f}, p99 {q['p99']:.2f}, max {q['max']:.2f})")
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    if over:
        net = [r.get("p99_net_of_cpu_wait") for r in results]
        if None not in net and max(net) <= args.target_p99:
            load += f"; net of run-queue wait every p99 is <= {args.target_p99:g}: the excess is CPU contention"
        print(f"warm verdict: OVER, p99 > {args.target_p99:g} ms for {', '.join(over)} ({load})")
    else:
        print(f"warm verdict: ok, p99 <= {args.target_p99:g} ms for every operation ({load})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def warm_runs(args, inv):
    provider = args.provider
    n, w = args.requests, args.warmup
    # The bench provider: every day 00:00-23:30 UTC, 30-minute bookings, so
    # that enough distinct slots exist for every createHold.
    rule = as_provider(load_event("putWeeklyRule"), provider)
    rule["arguments"] = {"userId": provider, "input": {
        "roleCode": ROLE, "weekdayMask": 127, "startLocal": "00:00", "endLocal": "23:30", "timezone": "UTC",
        "minDurationMin": 30, "leadTimeHours": 1, "bookingWindowDays": 60, "active": True}}
    status, answer, _ = inv.invoke(rule)
    check_ok(status, answer, "putWeeklyRule")

    day0 = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    slots_ev = load_event("bookableSlots")
    # One day the holds never touch: the read path measured on a steady calendar.
    probe_day = day0 + dt.timedelta(days=40)
    slots_ev["arguments"]["input"] = {"userId": provider, "roleCode": ROLE, "from": iso(probe_day),
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
    list_ev["arguments"]["input"] = {"userId": provider, "roleCode": ROLE, "from": iso(day0),
                                     "to": iso(day0 + dt.timedelta(days=days)), "durationMin": 30, "stepMin": 30}
    status, answer, _ = inv.invoke(list_ev)
    answer = check_ok(status, answer, "bookableSlots (slots to hold)")
    free = answer["slots"]
    if len(free) < need:
        sys.exit(f"lambda-bench: only {len(free)} slots to hold, {need} needed")

    results = []
    ms, waits = [], []
    for i in range(w + n):
        status, answer, t = inv.invoke(slots_ev)
        check_ok(status, answer, "bookableSlots")
        if i >= w:
            ms.append(t)
            waits.append(getattr(inv, "last_wait", None))
    results.append(summary(f"bookableSlots (1 day, {per_answer} slots)", ms, waits))

    hold_ev = load_event("createHold")
    run = uuid.uuid4().hex[:8]
    ms, waits = [], []
    for i in range(w + n):
        slot = free[i]
        ev = copy.deepcopy(hold_ev)
        ev["arguments"]["input"] = {"userId": provider, "roleCode": ROLE, "start": slot["start"], "end": slot["end"],
                                    "kind": "CHECKOUT", "mode": "INSTANT", "ttlMin": 30, "stepMin": 30,
                                    "idempotencyKey": f"bench-{run}-{i}"}
        status, answer, t = inv.invoke(ev)
        answer = check_ok(status, answer, f"createHold #{i} ({slot['start']})")
        if answer.get("status") != "ACTIVE":
            sys.exit(f"lambda-bench: createHold #{i} is not ACTIVE: {json.dumps(answer)[:300]}")
        if i >= w:
            ms.append(t)
            waits.append(getattr(inv, "last_wait", None))
    results.append(summary("createHold (distinct slots)", ms, waits))

    return results


# --- a minimal Lambda Runtime API ------------------------------------------------

LAMBDA_PREFIX = "/2018-06-01/runtime/"


class Runtime(http.server.ThreadingHTTPServer):
    """The Lambda Runtime API on 127.0.0.1 (a free port), for one function
    process: events go in with submit(); the function takes them with GET
    .../invocation/next (long poll, one at a time) and answers with POST
    .../invocation/{id}/response or /error; wait(id) returns that answer.

    Every reply is one send() on a TCP_NODELAY socket (http.server's own way
    is two writes, head then body, with Nagle on): a reply never waits for
    the function's delayed ACK (docs/performance.md)."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RuntimeHandler)
        self.lock = threading.Lock()
        self.events = queue.Queue()
        self.first_next = None
        self.calls = {}  # request id -> dict(submitted, handed_out, answered, kind, body, done)
        self.stop = threading.Event()

    @property
    def address(self):
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address):
        # A killed function leaves its held /next connection to reset: expected.
        pass

    def submit(self, event):
        rid = "bench-" + uuid.uuid4().hex
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        with self.lock:
            self.calls[rid] = {"submitted": time.perf_counter(), "handed_out": None, "answered": None,
                               "kind": None, "body": None, "done": threading.Event()}
        self.events.put((rid, body))
        return rid

    def wait(self, rid, timeout):
        """The call's record once answered, else None (timeout)."""
        call = self.calls[rid]
        return call if call["done"].wait(timeout) else None

    def close(self):
        self.stop.set()
        self.shutdown()
        self.server_close()


class RuntimeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _reply(self, code, body=b"", headers=(), before_send=None):
        head = [f"HTTP/1.1 {code} {self.responses.get(code, ('',))[0]}",
                f"date: {self.date_time_string()}", f"content-length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        if before_send:
            before_send()
        self.wfile.write(data)  # one sendall(): wbufsize is 0

    def do_GET(self):
        srv = self.server
        if not self.path.startswith(LAMBDA_PREFIX + "invocation/next"):
            return self._reply(404)
        with srv.lock:
            if srv.first_next is None:
                srv.first_next = time.perf_counter()
        while True:
            try:
                rid, body = srv.events.get(timeout=0.2)
                break
            except queue.Empty:
                if srv.stop.is_set():
                    return self._reply(410)
        call = srv.calls[rid]

        def handed_out():
            call["handed_out"] = time.perf_counter()

        deadline = int((time.time() + 30) * 1000)
        self._reply(200, body, [
            ("content-type", "application/json"),
            ("lambda-runtime-aws-request-id", rid),
            ("lambda-runtime-deadline-ms", str(deadline)),
            ("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench"),
            ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"),
        ], before_send=handed_out)

    def do_POST(self):
        srv = self.server
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        now = time.perf_counter()
        parts = self.path[len(LAMBDA_PREFIX):].split("/")
        # invocation/{id}/response | invocation/{id}/error | init/error
        call = srv.calls.get(parts[1]) if len(parts) == 3 and parts[0] == "invocation" else None
        if call is None and parts != ["init", "error"]:
            return self._reply(404)
        self._reply(202, b'{"status":"OK"}', [("content-type", "application/json")])
        if call is not None:
            call.update(answered=now, kind=parts[2], body=body)
            call["done"].set()


def lambda_env(name, runtime):
    """The environment Lambda gives a function (plus ours)."""
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench", "_HANDLER": "bootstrap",
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
    })
    return env


class RuntimeInvoker:
    """Invokes one long-lived function process through a Runtime: the process
    is started on the first call and killed by close(). Times each call from
    handing the event out on /next to receiving its /response (the function's
    part, which is what a warm invocation costs); `queued` keeps the time from
    submit() too, which adds any wait for the function to come back to /next."""

    def __init__(self, binary, log_path=None):
        self.binary = binary
        self.runtime = Runtime()
        threading.Thread(target=self.runtime.serve_forever, daemon=True).start()
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([binary], env=lambda_env(os.path.basename(binary), self.runtime),
                                     stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.queued = []
        self.backends, self.lookups = [], 0

    def database_backends(self):
        """The pids of the local Postgres backends serving the function's
        connections (`ss -tnpH`, best effort: none if ss is missing)."""
        try:
            out = subprocess.run(["ss", "-tnpH"], capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        port = urllib.parse.urlsplit(os.environ.get("DATABASE_URL", "")).port or 5432
        rows = [line.split() for line in out.splitlines() if len(line.split()) >= 6]
        mine = {r[3] for r in rows if f"pid={self.proc.pid}," in r[5] and r[4].endswith(f":{port}")}
        return [int(m.group(1)) for r in rows if r[4] in mine and (m := re.search(r"pid=(\d+),", r[5]))]

    @staticmethod
    def run_queue_wait_ms(pids):
        """Time the threads of these processes have spent runnable but not
        running (/proc/PID/task/*/schedstat, field 2), in ms; None without
        schedstat."""
        total = 0
        try:
            for pid in pids:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                        total += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            return None
        return total / 1e6

    def invoke(self, event, timeout=60):
        pids = [self.proc.pid] + self.backends
        w0 = self.run_queue_wait_ms(pids)
        rid = self.runtime.submit(event)
        deadline = time.perf_counter() + timeout
        call = None
        while call is None and self.proc.poll() is None and time.perf_counter() < deadline:
            call = self.runtime.wait(rid, 0.5)
        if call is None:
            sys.exit(f"lambda-bench: {os.path.basename(self.binary)} gave no answer "
                     f"(exit status {self.proc.poll()}; see its log)")
        self.queued.append((call["answered"] - call["submitted"]) * 1000.0)
        w1 = self.run_queue_wait_ms(pids)
        # Of this call, the time fn-api and its backend waited for a CPU
        # (other processes' work); summed over threads, so an upper bound.
        self.last_wait = None if w0 is None or w1 is None else w1 - w0
        if not self.backends and self.lookups < 3:
            # After the first answers: the pool has connected by then.
            self.lookups += 1
            self.backends = self.database_backends()
        status = 200 if call["kind"] == "response" else 500
        answer = json.loads(call["body"]) if call["body"] else None
        return status, answer, (call["answered"] - call["handed_out"]) * 1000.0

    def close(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()
        self.runtime.close()


def cold(args):
    slots_ev = load_event("bookableSlots")
    day = dt.datetime.now(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=42)
    slots_ev["arguments"]["input"] = {"userId": PROVIDER, "roleCode": ROLE, "from": iso(day),
                                      "to": iso(day + dt.timedelta(days=1)), "durationMin": 60, "stepMin": 30}
    rows = []
    for path in args.bins:
        name = os.path.basename(path)
        with_response = name in args.first_response
        extra = {}
        for spec in args.env:
            target, _, kv = spec.partition(":")
            if target == name:
                k, _, v = kv.partition("=")
                extra[k] = v
        inits, firsts, errors = [], [], []
        for run in range(args.runs):
            # A runtime API (and port) per run: a request the previous, killed
            # process had already sent must not count for this one.
            srv = Runtime()
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            # Queued before the start: the first /next takes it at once.
            rid = srv.submit(slots_ev) if with_response else None
            env = lambda_env(name, srv)
            env.update(extra)
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
                    call = srv.wait(rid, 30)
                    if call is None:
                        errors.append(f"run {run}: no response within 30 s")
                        continue
                    firsts.append((call["answered"] - t0) * 1000.0)
                    if call["kind"] != "response" or b'"data"' not in (call["body"] or b""):
                        errors.append(f"run {run}: {call['kind']}: {call['body'][:300]!r}")
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
                if log is not subprocess.DEVNULL:
                    log.close()
                srv.close()
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
    target = w.add_mutually_exclusive_group(required=True)
    target.add_argument("--bin", help="fn-api's binary, run under the runtime API here")
    target.add_argument("--url", help="an invocations URL (cargo lambda watch) instead")
    w.add_argument("--log", help="the function's stdout/stderr (--bin)")
    w.add_argument("--target-p99", type=float, default=10.0)
    w.add_argument("--provider", default=PROVIDER,
                   help="the bench provider (another one for a second run on the same database: its holds fill the slots)")
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
