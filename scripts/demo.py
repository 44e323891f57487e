#!/usr/bin/env python3
"""`make demo`: the whole product on the local test bed, a working day compressed into minutes.

scripts/demo.sh starts the test bed (its own, under TESTBED_DIR) and both functions under
`cargo lambda watch`; this script plays the day and prints the report. Every controller
tick is the real pool-controller invoked by the test bed's schedule, every lifecycle action
goes to the real termination-guard; both pass through a relay in this process only so that
the script knows when a tick has ended and what it planned.

1. A pool that has lived a week. The simulator (`sim/src/bin/demo-day.rs`) runs the
   controller's own `plan()` over the week before the bundled workday trace and prints the
   state it ends with (the learned demand by hour of week and minute of hour, the measured
   boot latencies), moved to the demo's Monday; the state is PUT into the state bucket
   before the first tick. The group has a managed warm pool (WARM_POOL_MODE=managed), a
   MaxSize above the demand's peak, and starts at the size and warm pool the simulator's run
   of our policy had at that minute.
2. The day. The workday trace's own requests (bursts on the hour and half hour, 20-90 min
   recordings, their finalize/upload) are driven through the Jitsi emulator minute by
   minute: Jicofo gives each request an idle recorder at once or refuses it (no queue). By
   default two windows of the day are played, the start of the day and its end; between
   them the meetings running end, one more tick releases what was held for them, and once
   no lifecycle action is open the clock jumps over the hours between (no demand, no
   tick). DEMO_LONG=1 plays the whole day; DEMO_WINDOWS="HH:MM-HH:MM,..." chooses others.
3. The end of the day: demand stops and the controller scales in what is idle (never a
   busy recorder); then the group is forced to 0 while recordings still run, as an
   operator going home would (scale-in protection lifted, min = max = desired = 0). The
   guard holds every busy recorder (Terminating:Wait), drains it, and the controller's
   sweep releases each once its recording and upload are over. Afterwards the clock runs
   in 5-minute steps until the group is empty.
4. The report: ours against every baseline, which the simulator runs on the same requests
   (the best baseline is the one with the fewest failed recordings), the end-of-day
   scale-in, the holds, recordings cut (Jicofo's failure counters and the recorders'
   sessions), and a chart (docs/demo.svg, DEMO_CHART to write elsewhere; the numbers go
   to TESTBED_DIR/demo.json, and `scripts/demo.py --redraw [JSON]` draws the chart again).

Only 127.0.0.0/8 is ever dialed.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parents[1]
GROUP = "jibri-pool"
BUCKET = "jibri-autoscaler-state"
DAY = 86_400
STARTED = time.monotonic()


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"demo: {name} is not set (run through `make demo`)")
    if not value.startswith("http://127."):
        sys.exit(f"demo: refusing non-loopback {name}={value}")
    return value.rstrip("/")


# The test bed's endpoints and the functions' (set by main from the environment).
AWS = JITSI = WATCH = ""
STATE_KEY = os.environ.get("STATE_PREFIX", "jibri-autoscaler/state/") + f"{GROUP}.json"


def hhmm(seconds):
    seconds = int(seconds) % DAY
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def parse_hhmm(text):
    h, m = text.strip().split(":")
    return int(h) * 3600 + int(m) * 60


def call(method, url, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def testbed(method, path, body=None):
    status, out = call(method, f"{AWS}/_testbed/{path}", body)
    if status >= 300:
        sys.exit(f"demo: test bed {path}: {status} {out}")
    return out


def control(method, path, body=None):
    return call(method, f"{JITSI}/control/{path}", body)


def clients():  # the same clients scripts/seed.py uses
    cfg = Config(retries={"max_attempts": 1}, region_name="us-east-1")
    kw = dict(endpoint_url=AWS, aws_access_key_id="testing", aws_secret_access_key="testing", config=cfg)
    return boto3.client("autoscaling", **kw), boto3.client("s3", **kw)


# --- the relay: the test bed's schedule and lifecycle events go through here to the functions


class Relay:
    """Forwards the test bed's deliveries to the functions under `cargo lambda watch` and
    keeps what they answered: each tick's plan, each guard decision."""

    def __init__(self):
        self.ticks: queue.Queue = queue.Queue()
        self.guard: list[dict] = []
        self.lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                function = {"/schedule": "pool-controller", "/lifecycle": "termination-guard"}.get(self.path)
                if function is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                url = f"{WATCH}/2015-03-31/functions/{function}/invocations"
                req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
                try:
                    with urllib.request.urlopen(req, timeout=600) as r:
                        status, raw = r.status, r.read()
                except urllib.error.HTTPError as e:
                    status, raw = e.code, e.read()
                except OSError as e:
                    status, raw = 502, json.dumps({"relay": str(e)}).encode()
                try:
                    event = json.loads(body)
                except ValueError:
                    event = {}
                try:
                    answer = json.loads(raw) if raw else None
                except ValueError:
                    answer = raw.decode(errors="replace")
                if function == "pool-controller":
                    relay.ticks.put({"time": event.get("time"), "status": status, "answer": answer})
                else:
                    detail = event.get("detail") or {}
                    with relay.lock:
                        relay.guard.append(
                            {
                                "time": event.get("time"),
                                "instance": detail.get("EC2InstanceId"),
                                "transition": detail.get("LifecycleTransition"),
                                "destination": detail.get("Destination"),
                                "status": status,
                                "answer": answer,
                            }
                        )
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def guard_results(self):
        """(time, instance, result, why) of every guard decision so far."""
        out = []
        with self.lock:
            entries = list(self.guard)
        for g in entries:
            outcomes = g["answer"].get("outcomes", []) if isinstance(g["answer"], dict) else []
            for o in outcomes or [{"result": f"error {g['status']}", "instance": g["instance"]}]:
                out.append((g["time"], o.get("instance", g["instance"]), o.get("result"), o.get("why", "")))
        return out


# --- the plan line the controller answers with


def plan_fields(answer):
    """The controller's plan summary, as numbers (see `Plan::summary`)."""
    line = answer.get("plan", "") if isinstance(answer, dict) else ""
    out = {"line": line, "outcome": answer.get("outcome") if isinstance(answer, dict) else None}
    m = re.search(r"desired=(\d+)(?:->(\d+))?", line)
    if m:
        out["desired_before"] = int(m.group(1))
        out["desired"] = int(m.group(2) or m.group(1))
    m = re.search(r"spare=(\d+) \(rate ([\d.]+)/min, forecast ([\d.-]+)", line)
    if m:
        out["spare"] = int(m.group(1))
        out["forecast"] = None if m.group(3) == "-" else float(m.group(3))
    for key in ("busy", "idle", "launching", "unknown", "broken", "held", "retained", "refused"):
        m = re.search(rf" {key}=(\d+)", line)
        if m:
            out[key] = int(m.group(1))
    m = re.search(r" warm=(\d+)/(\d+)", line)
    if m:
        out["warm_ready"], out["warm"] = int(m.group(1)), int(m.group(2))
    m = re.search(r" warm_pool->(\d+)", line)
    if m:
        out["warm_pool_to"] = int(m.group(1))
    m = re.search(r" victims=\[([^\]]*)\]", line)
    out["victims"] = m.group(1).split(",") if m else []
    return out


# --- the simulator's part


def simulator(day_epoch, windows, force_zero, seed):
    bin_path = os.environ.get("DEMO_DAY_BIN", str(REPO / "target/debug/demo-day"))
    cmd = [bin_path, "--day-epoch", str(day_epoch), "--force-zero", hhmm(force_zero), "--seed", str(seed)]
    for a, b in windows:
        cmd += ["--window", f"{hhmm(a)}-{hhmm(b)}"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def next_monday(epoch, first_window):
    """The first Monday 00:00 UTC whose first window is still ahead of `epoch`."""
    day = int(epoch) - int(epoch) % DAY
    while True:
        if dt.datetime.fromtimestamp(day, dt.timezone.utc).weekday() == 0 and day + first_window > epoch + 120:
            return day
        day += DAY


# --- the chart


def write_chart(series, marks, path, title, subtitle):
    """Desired capacity, busy and idle recorders, the ready warm pool, held hooks and the
    requests per minute, on the test-bed clock; skipped hours are a break in the axis."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    w, h, left, right, top_pad, plot_h, brk = 1100, 450, 45, 20, 80, 290, 26
    bottom_y = top_pad + plot_h
    top = max([max(s["desired"], s["busy"] + s["idle"], s["warm_ready"], s["requests"]) for s in series] + [1])
    top = (top // 10 + 1) * 10
    # Segments of played time; a jump of more than 5 minutes is a skip.
    segments, cur = [], [series[0]["t"], series[0]["t"]]
    for a, b in zip(series, series[1:]):
        if b["t"] - a["t"] > 300:
            segments.append(cur)
            cur = [b["t"], b["t"]]
        else:
            cur[1] = b["t"]
    segments.append(cur)
    span = sum(max(b - a, 60) for a, b in segments)
    unit = (w - left - right - brk * (len(segments) - 1)) / span
    origins, x0 = [], left
    for a, b in segments:
        origins.append((a, b, x0))
        x0 += max(b - a, 60) * unit + brk

    def x(t):
        for a, b, o in origins:
            if t <= b + 60:
                return o + (min(t, b) - a) * unit
        a, b, o = origins[-1]
        return o + (b - a) * unit

    y = lambda v: bottom_y - v * plot_h / top  # noqa: E731
    e = html.escape
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{e(title)}</text>',
    ]
    for k, part in enumerate(subtitle.split("\n")):
        out.append(f'<text x="{left}" y="{38 + 15 * k}" fill="#555">{e(part)}</text>')
    for v in range(0, top + 1, 10):
        for a, b, o in origins:
            out.append(
                f'<line x1="{o:.1f}" x2="{o + max(b - a, 60) * unit:.1f}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
            )
        out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#666">{v}</text>')
    for k, (a, b, o) in enumerate(origins):
        if k > 0:
            xm = o - brk / 2
            out.append(f'<text x="{xm:.1f}" y="{y(top / 2):.1f}" text-anchor="middle" fill="#999" font-size="16">⋯</text>')
        for t in range(a - a % 1800 + 1800 if a % 1800 else a, b + 1, 1800):
            out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{bottom_y}" y2="{bottom_y + 4}" stroke="#666"/>')
            out.append(f'<text x="{x(t):.1f}" y="{bottom_y + 17}" text-anchor="middle" fill="#666">{hhmm(t)}</text>')
    # Requests per minute as bars, refused ones on top in red.
    bw = max(60 * unit * 0.8, 1)
    for s in series:
        if s["requests"]:
            served = s["requests"] - s["refused"]
            xx = x(s["t"]) - bw / 2
            out.append(f'<rect x="{xx:.1f}" y="{y(served):.1f}" width="{bw:.1f}" height="{y(0) - y(served):.1f}" fill="#bbb"/>')
            if s["refused"]:
                out.append(
                    f'<rect x="{xx:.1f}" y="{y(s["requests"]):.1f}" width="{bw:.1f}" '
                    f'height="{y(served) - y(s["requests"]):.1f}" fill="#d62728"/>'
                )
    for k, (t, label) in enumerate(marks):
        last = k == len(marks) - 1
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top_pad}" y2="{bottom_y}" stroke="#ff7f0e" stroke-dasharray="3,2"/>')
        anchor, dx, row = ("start", 4, 0) if last else ("end", -4, 0)
        if last and x(t) > w - right - 7 * len(label):
            anchor, dx, row = "end", -4, 1
        out.append(
            f'<text x="{x(t) + dx:.1f}" y="{top_pad + 12 + 15 * row}" text-anchor="{anchor}" fill="#c85a00">{e(label)}</text>'
        )
    legend = []

    def line(key, colour, label, dash=""):
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        for a, b, _ in origins:
            pts = " ".join(f"{x(s['t']):.1f},{y(s[key]):.1f}" for s in series if a <= s["t"] <= b)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8"{extra} points="{pts}"/>')
        legend.append((colour, label, extra))

    line("warm_ready", "#7f7f7f", "warm pool (ready)", "4,3")
    line("idle", "#2ca02c", "idle recorders")
    line("desired", "#1f77b4", "desired capacity")
    line("busy", "#d62728", "busy recorders")
    line("held", "#ff7f0e", "hooks held")
    ly, lx = bottom_y + 40, left
    for colour, label, extra in legend:
        out.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="2.5"{extra}/>')
        out.append(f'<text x="{lx + 27}" y="{ly + 4}">{label}</text>')
        lx += 42 + 6.5 * len(label)
    out.append(f'<rect x="{lx}" y="{ly - 5}" width="16" height="10" fill="#bbb"/>')
    out.append(f'<text x="{lx + 21}" y="{ly + 4}">requests per minute</text>')
    lx += 150
    out.append(f'<rect x="{lx}" y="{ly - 5}" width="16" height="10" fill="#d62728"/>')
    out.append(f'<text x="{lx + 21}" y="{ly + 4}">refused</text>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out) + "\n")
    return path


def chart_text(r):
    """The chart's title, subtitle and marks, from the report's numbers."""
    title = (
        f"make demo: {r['requests']} recordings, {r['refused']} refused (best baseline {r['best']['refused']}, "
        f"best autoscaling {r['best_autoscaling']['refused']}); forced to 0 with {r['running_when_forced']} "
        f"recordings running, {r['cut']} cut"
    )
    subtitle = (
        f"{r['date']} on the local test bed: both functions under cargo lambda watch, a pool that lived a week "
        f"(its learned demand), a managed warm pool, MaxSize {r['max_size']}."
    )
    if r["multiple_windows"]:
        subtitle += "\nPlayed minute by minute: " + r["windows"] + "; the hours between are skipped (⋯)."
    marks = [(r["force_zero"], f"forced to 0 ({r['running_when_forced']} recordings running)")]
    if r["scale_in_from"] is not None:
        marks.insert(0, (r["scale_in_from"], "end-of-day scale-in"))
    return title, subtitle, marks


def redraw(numbers, chart):
    """`scripts/demo.py --redraw [NUMBERS]`: the chart again from a run's numbers
    (TESTBED_DIR/demo.json), without playing the day."""
    r = json.loads(Path(numbers).read_text())
    title, subtitle, marks = chart_text(r)
    print(write_chart(r["series"], marks, chart, title, subtitle))
    return 0


# --- the day


class Day:
    def __init__(self, relay, sim, day_epoch):
        self.relay = relay
        self.sim = sim
        self.day = day_epoch
        self.asg, self.s3 = clients()
        self.jobs = sorted(sim["jobs"], key=lambda j: j["start_s"])
        self.next_job = 0
        self.conferences = dict(sim["conferences"])
        self.active = {}  # recorder -> {"end": recording end, "done": finalize end, "finalizing": bool}
        self.requests = 0
        self.refused = 0
        self.cut = []  # recorders whose session ended before its time
        self.series = []
        self.plans = []
        self.ticks = 0
        self.tick_wall = []
        self.guard_seen = 0

    # The test-bed clock, on the demo's day.
    def clock(self):
        return testbed("GET", "clock")["epoch_s"]

    def advance_to(self, t):
        """Moves the test-bed clock to the demo's second `t` of the day (never back); how
        many timers ran (boots ended, warm starts, the schedule)."""
        target = self.day + t
        now = self.clock()
        if target > now:
            return testbed("POST", "clock/advance", {"seconds": round(target - now, 3)}).get("processed", 0)
        return 0

    def wait_tick(self, t):
        """The controller's answer to the schedule event stamped `t`."""
        want = dt.datetime.fromtimestamp(self.day + t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                tick = self.relay.ticks.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.ticks += 1
            if tick["status"] >= 300 or not isinstance(tick["answer"], dict) or "plan" not in tick["answer"]:
                print(f"demo: tick {tick['time']} failed: {tick['status']} {tick['answer']}", flush=True)
                continue
            if tick["time"] == want:
                return plan_fields(tick["answer"])
        sys.exit(f"demo: no controller tick for {want} (see the watch log)")

    def follow(self):
        """Waits for the emulator's next poll of the group, so that its recorders are the
        group's in-service instances as they are now."""
        _, f = control("GET", "follow")
        start = (f or {}).get("polls", 0)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, f = control("GET", "follow")
            if (f or {}).get("polls", 0) > start:
                return
            time.sleep(0.03)

    def settle(self, limit_s=30):
        """Waits (wall time) until no lifecycle action is open: the guard has judged every
        event delivered and the sweep released what it held."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if not testbed("GET", "actions").get("actions"):
                return
            time.sleep(0.2)
        open_ = [(a["EC2InstanceId"], a["LifecycleTransition"]) for a in testbed("GET", "actions").get("actions", [])]
        print(f"demo: lifecycle actions still open: {open_}", flush=True)

    def recorders(self):
        _, st = control("GET", "state")
        return {r["id"]: r for r in (st or {}).get("recorders", [])}

    def end_recordings(self, until, recs):
        """Recordings whose meeting ended before `until` stop (their finalize/upload begins,
        BUSY); finalizes that are over finish. A session that ended on its own is cut."""
        for rec, a in list(self.active.items()):
            r = recs.get(rec)
            alive = r is not None and not r.get("gone") and r.get("status") == "BUSY"
            if not alive:
                self.cut.append(rec)
                del self.active[rec]
                continue
            if not a["finalizing"] and a["end"] < until:
                control("POST", f"recorders/{rec}/stop-recording")
                a["finalizing"] = True
            if a["finalizing"] and a["done"] < until:
                control("POST", f"recorders/{rec}/finish-finalize")
                del self.active[rec]

    def start_recordings(self, until, forced):
        """The requests of the minute: Jicofo gives each an idle recorder or refuses it."""
        n = refused = 0
        while self.next_job < len(self.jobs) and self.jobs[self.next_job]["start_s"] < until:
            j = self.jobs[self.next_job]
            self.next_job += 1
            if forced:
                continue
            n += 1
            status, out = control("POST", "jicofo/default/request-recording")
            if status == 200:
                rec = out["recorder"]
                # The upload after the recording keeps it BUSY until `finish-finalize`.
                control("PUT", f"recorders/{rec}", {"finalize_ms": 86_400_000})
                end = j["start_s"] + j["duration_s"]
                self.active[rec] = {"end": end, "done": end + j["finalize_s"], "finalizing": False}
            else:
                refused += 1
        self.requests += n
        self.refused += refused
        return n, refused

    def minute(self, t, step=60, forced=False, note=""):
        """One played step: the clock to `t` (the schedule fires), the tick's plan, then
        the meetings of [t, t + step)."""
        wall = time.monotonic()
        processed = self.advance_to(t + 0.5)
        p = self.wait_tick(t)
        self.tick_wall.append(time.monotonic() - wall)
        self.plans.append((t, p))
        if processed > 1:
            # Instances went in service (or left): the emulator's recorders follow.
            self.follow()
        recs = self.recorders()
        self.end_recordings(t + step, recs)
        if t in self.conferences:
            control("PUT", "jicofo/default", {"conferences": self.conferences[t]})
        n, refused = self.start_recordings(t + step, forced)
        recs = self.recorders()
        busy = sum(1 for r in recs.values() if r.get("status") == "BUSY" and not r.get("gone"))
        idle = sum(1 for r in recs.values() if r.get("available"))
        s = {
            "t": t,
            "requests": n,
            "refused": refused,
            "busy": busy,
            "idle": idle,
            "desired": p.get("desired", 0),
            "warm_ready": p.get("warm_ready", 0),
            "held": p.get("held", 0),
        }
        self.series.append(s)
        results = self.relay.guard_results()
        new, self.guard_seen = results[self.guard_seen :], len(results)
        busy_held = sorted({i for _, i, r, why in new if r == "held" and why == "busy"})
        other_held = sorted({f"{i}: {why}" for _, i, r, why in new if r == "held" and why != "busy"})
        released = sum(1 for _, _, r, _ in new if r == "continued")
        if busy_held or other_held or released:
            note += "  guard:" + (f" released {released} idle" if released else "")
            note += f" HELD {len(busy_held)} BUSY ({', '.join(busy_held)})" if busy_held else ""
            note += f" held {len(other_held)} ({', '.join(other_held)})" if other_held else ""
        forecast = p.get("forecast")
        before, after = p.get("desired_before", 0), p.get("desired", 0)
        desired = f"{before}→{after}" if after != before else f"{after}"
        print(
            f"{hhmm(t)} {n:>4} {busy:>4} {idle:>4} {desired:>7}  {p.get('spare', 0):>5} "
            f"({'-' if forecast is None else f'{forecast:4.1f}':>4}) {p.get('warm_ready', 0):>5} {p.get('held', 0):>4} "
            f"| requests {self.requests:>3} refused {self.refused:>2}{note}",
            flush=True,
        )
        return p

    def group(self):
        return self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]


def main():
    global AWS, JITSI, WATCH
    AWS, JITSI, WATCH = env("AWS_ENDPOINT_URL"), env("JITSI_EMULATOR_URL"), env("LAMBDA_WATCH_URL")
    long_form = os.environ.get("DEMO_LONG", "") not in ("", "0")
    spec = os.environ.get("DEMO_WINDOWS") or ("07:30-18:05" if long_form else "07:50-09:05,16:20-18:05")
    windows = [tuple(parse_hhmm(x) for x in w.split("-")) for w in spec.split(",")]
    force_zero = parse_hhmm(os.environ["DEMO_FORCE_ZERO"]) if os.environ.get("DEMO_FORCE_ZERO") else windows[-1][1]
    seed = int(os.environ.get("DEMO_SEED", "1"))
    chart = os.environ.get("DEMO_CHART", str(REPO / "docs/demo.svg"))

    relay = Relay()
    asg, s3 = clients()
    day = next_monday(testbed("GET", "clock")["epoch_s"], windows[0][0])
    sim = simulator(day, windows, force_zero, seed)
    learned = sim["learned"]
    date = dt.datetime.fromtimestamp(day, dt.timezone.utc).strftime("%A %Y-%m-%d")
    print(
        f"demo: {date}, the workday trace (seed {seed}): {len(sim['jobs'])} recordings in "
        f"{', '.join(f'{hhmm(a)}-{hhmm(b)}' for a, b in windows)}; forced to 0 at {hhmm(force_zero)}"
    )
    print(
        f"demo: the pool lived the week before in the simulator (its plan() over {7} days): "
        f"{learned['hours_of_week']} hours of the week and {learned['hours_of_day']} of the day learned, "
        f"boot measured {learned['boot']['cold']['high_s']} s cold ({learned['boot']['cold']['samples']} boots), "
        f"{learned['boot']['warm']['high_s']} s warm ({learned['boot']['warm']['samples']} starts)"
    )

    # The group as the simulator's run of our policy had it at the first minute: a MaxSize
    # well above the demand's peak, a managed warm pool (stopped, reused on scale-in).
    peak = max(sim["peak_busy"], sim["ours_max_desired"])
    max_size = (peak + 20) // 10 * 10 + 10
    start = sim["ours_at_start"] or {"desired": 2, "warm": 0}
    testbed("POST", "config", {"boot_delay_s": 180, "warm_start_delay_s": 40})
    asg.update_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=1, MaxSize=max_size, DesiredCapacity=start["desired"])
    if start["warm"]:
        asg.put_warm_pool(
            AutoScalingGroupName=GROUP,
            MinSize=start["warm"],
            MaxGroupPreparedCapacity=start["warm"],
            PoolState="Stopped",
            InstanceReusePolicy={"ReuseOnScaleIn": True},
        )
    testbed(
        "POST",
        "config",
        {"lifecycle_event_url": f"{relay.url}/lifecycle", "delivery_timeout_s": 300},
    )
    control("POST", "follow", {"aws_endpoint": AWS, "group": GROUP, "interval_ms": 150})
    print(
        f"demo: group {GROUP}: MaxSize {max_size} (the demand's peak: {sim['peak_busy']} recordings at once), "
        f"desired {start['desired']}, warm pool {start['warm']} stopped; boot 180 s cold, 40 s from the warm pool (test-bed clock)"
    )

    # The functions start (cargo lambda watch builds them on their first invocation).
    t0 = time.monotonic()
    for fn, body in (("pool-controller", {"plan_only": True}), ("termination-guard", {"source": "demo.warm-up"})):
        status, out = call("POST", f"{WATCH}/2015-03-31/functions/{fn}/invocations", body, timeout=600)
        if status >= 300:
            sys.exit(f"demo: {fn} did not answer under cargo lambda watch: {status} {out}")
    print(f"demo: both functions answer under cargo lambda watch ({time.monotonic() - t0:.0f} s)", flush=True)

    d = Day(relay, sim, day)
    # The night before: the clock to a minute before the first window, the instances boot
    # (and the warm pool's stop), then the learned state goes where the controller reads it.
    first = windows[0][0]
    d.advance_to(first - 60)
    # The schedule: a tick every minute of test-bed time, the first at the first window.
    testbed("POST", "config", {"schedule_url": f"{relay.url}/schedule", "schedule_period_s": 60})
    s3.put_object(Bucket=BUCKET, Key=STATE_KEY, Body=json.dumps(sim["state"]).encode(), ContentType="application/json")
    print(f"demo: s3://{BUCKET}/{STATE_KEY}: the learned state ({len(json.dumps(sim['state']))} bytes); a tick every minute from {hhmm(first)}")
    print()
    print("time   req busy idle desired  spare (fcst)  warm held | totals")

    scale_in = {"from": None, "victims": 0, "desired_from": None, "desired_to": None}
    last_burst = max((j["start_s"] for j in d.jobs if j["start_s"] % 1800 < 180), default=force_zero)
    last_burst = last_burst - last_burst % 1800 + 300
    played = 0
    for k, (a, b) in enumerate(windows):
        if k > 0:
            # The hours between: the meetings running end (as they would in those hours),
            # one more tick releases what was held for them, and once no lifecycle action
            # is open (a jump past a hook's heartbeat timeout would ABANDON it) the clock
            # jumps with the schedule off: no demand, no tick. It starts again at the window.
            d.end_recordings(DAY, d.recorders())
            d.minute(windows[k - 1][1], forced=True, note="  (the meetings running end in the hours skipped)")
            d.settle()
            testbed("POST", "config", {"schedule_url": None})
            d.advance_to(a - 60)
            testbed("POST", "config", {"schedule_url": f"{relay.url}/schedule", "schedule_period_s": 60})
            print(f"  ⏩  {hhmm(windows[k - 1][1])}–{hhmm(a)} skipped: no demand driven, no tick", flush=True)
        for t in range(a, min(b, force_zero), 60):
            p = d.minute(t)
            played += 1
            if t >= last_burst and p.get("victims"):
                if scale_in["from"] is None:
                    scale_in.update({"from": t, "desired_from": p.get("desired_before")})
                scale_in["victims"] += len(p["victims"])
                scale_in["desired_to"] = p.get("desired")

    # The end of the day: forced to 0 while recordings run.
    t = force_zero
    p = d.minute(t, forced=True)
    g = d.group()
    in_service = [i["InstanceId"] for i in g["Instances"] if i["LifecycleState"] == "InService"]
    recs = d.recorders()
    running = sorted(r for r in d.active if recs.get(r, {}).get("status") == "BUSY")
    for i in range(0, len(in_service), 50):
        asg.set_instance_protection(
            AutoScalingGroupName=GROUP, InstanceIds=in_service[i : i + 50], ProtectedFromScaleIn=False
        )
    asg.update_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=0, MaxSize=0, DesiredCapacity=0)
    print(
        f"{hhmm(t)} ■ forced to 0 while {len(running)} recordings run: "
        f"`set-instance-protection --no-protected-from-scale-in` on {len(in_service)} instances, "
        "`update-auto-scaling-group --min-size 0 --max-size 0 --desired-capacity 0`",
        flush=True,
    )
    guard_before = len(relay.guard_results())
    max_held = 0
    tail_steps = 0
    nxt = force_zero + 60
    while True:
        # A minute at first: the controller's sweep takes over the held hooks (heartbeat,
        # drain) while their recordings still run; then 5-minute steps until all are done.
        step = 60 if tail_steps < 3 else 300
        t, tail_steps = nxt, tail_steps + 1
        p = d.minute(t, step=step, forced=True)
        nxt = t + step
        max_held = max(max_held, p.get("held", 0))
        g = d.group()
        left = [i["LifecycleState"] for i in g["Instances"]]
        if all(state.endswith("Retained") for state in left) or tail_steps > 40:
            break
    empty = not g["Instances"]
    left = ", ".join(f"{i['InstanceId']} {i['LifecycleState']}" for i in g["Instances"])
    print(f"{hhmm(t)} " + ("the group is empty" if empty else f"still in the group: {left}"), flush=True)

    # The report.
    shard = control("GET", "jicofo/default")[1] or {}
    failures = shard.get("total_recording_failures", 0) - d.refused
    results = relay.guard_results()

    def busy_held(rs):
        return sorted({i for _, i, r, why in rs if r == "held" and why == "busy"})

    forced_held = busy_held(results[guard_before:])
    stamp = lambda t: dt.datetime.fromtimestamp(day + t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    eod_from = stamp(scale_in["from"]) if scale_in["from"] is not None else stamp(force_zero)
    day_held = busy_held([g for g in results[:guard_before] if (g[0] or "") < eod_from])
    eod_held = busy_held([g for g in results[:guard_before] if (g[0] or "") >= eod_from])
    cut = len(d.cut)
    wall = time.monotonic() - STARTED
    best, best_auto = sim["best"], sim["best_autoscaling"]
    ours_sim = next(r for r in sim["compare"] if r["policy"].startswith("ours"))
    last_release = hhmm(t)

    def pct(a, b):
        return f"{100.0 * a / max(1, b):.1f} %"

    played_windows = ", ".join(f"{hhmm(a)}-{hhmm(b)}" for a, b in windows)
    print()
    print(
        f"demo report: {date}, {played} minutes of a working day played ({played_windows}), then the group forced to 0; "
        f"{d.ticks} controller ticks; {wall:.0f} s of wall time"
    )
    print(
        f"  the pool          lived a week: the simulator ran the controller's plan() over the 7 days before (workdays, a weekend); "
        f"{learned['hours_of_week']} hours of the week learned, boot {learned['boot']['cold']['high_s']} s cold / "
        f"{learned['boot']['warm']['high_s']} s warm measured; managed warm pool; MaxSize {max_size}, above the demand's peak of {sim['peak_busy']}"
    )
    print(f"  requests          {d.requests}, the workday trace's (bursts on the hour and the half hour), minute by minute through Jicofo")
    print(f"  refused           ours {d.refused} ({pct(d.refused, d.requests)}) on the test bed; "
          f"{ours_sim['refused']} ({pct(ours_sim['refused'], ours_sim['requests'])}) in the simulator on the same requests")
    print(f"                    best baseline on the same requests (simulator): {best['policy']}, {best['refused']} "
          f"({pct(best['refused'], best['requests'])}), paying {best['instance_hours']:.0f} instance-hours for the day against ours {ours_sim['instance_hours']:.0f}")
    print(f"                    best autoscaling baseline: {best_auto['policy']}, {best_auto['refused']} ({pct(best_auto['refused'], best_auto['requests'])})")
    if day_held:
        n = len(day_held)
        print(f"  during the day    the guard held {n} busy recorder{'s' if n > 1 else ''}: chosen for scale-in while idle, "
              f"{'each' if n > 1 else 'it'} took a recording in the seconds before its drain, and was released once it was done")
    else:
        print("  during the day    no recorder chosen for scale-in took a recording before its drain: the guard held none")
    eod = []
    if scale_in["from"] is not None:
        eod.append(f"from {hhmm(scale_in['from'])} the controller scales in what is idle: desired {scale_in['desired_from']} → "
                   f"{scale_in['desired_to']}, {scale_in['victims']} recorders removed, each idle when chosen"
                   + (f" ({len(eod_held)} took a recording before the drain: held by the guard)" if eod_held else ""))
    eod.append(f"at {hhmm(force_zero)} the group is forced to 0 while {len(running)} recordings run: the guard holds "
               f"{len(forced_held)} busy recorders in Terminating:Wait (at most {max_held} hooks held at once), each released "
               "after its recording and upload; " + (f"the group is empty at {last_release}" if empty else f"left at {last_release}: {left}"))
    print("  end of the day    " + "\n                    ".join(eod))
    print(f"  recordings cut    {cut} (sessions that ended before their time: {len(d.cut)}; Jicofo's failures beyond refusals: {max(0, failures)}); "
          f"without the terminate hook and the guard (every baseline) the {len(running)} would have been cut")
    print(f"  tick              median {sorted(d.tick_wall)[len(d.tick_wall) // 2]:.2f} s of wall time from the clock's step to the plan")
    print(f"  function logs     {os.environ.get('DEMO_WATCH_LOG', 'the watch log')}")
    print()
    print("  every policy on the same requests (ours also on the test bed; the rest in the simulator, sim/src/bin/demo-day.rs):")
    print("  | policy | refused | busy killed | instance-hours (day) |")
    print("  |---|---:|---:|---:|")
    print(f"  | ours + warm pool, test bed | {d.refused} ({pct(d.refused, d.requests)}) | {cut} | – |")
    for r in sim["compare"]:
        print(f"  | {r['policy']} | {r['refused']} ({pct(r['refused'], r['requests'])}) | {r['busy_killed']} | {r['instance_hours']:.1f} |")
    summary = {
        "date": date, "windows": played_windows, "requests": d.requests, "refused": d.refused,
        "best": best, "best_autoscaling": best_auto, "ours_simulator": ours_sim,
        "held_busy_day": day_held, "held_busy_end_of_day": eod_held, "held_busy_forced": forced_held,
        "running_when_forced": len(running), "cut": cut, "jicofo_failures_beyond_refusals": failures,
        "wall_s": round(wall, 1), "ticks": d.ticks, "tick_wall_s": [round(x, 2) for x in d.tick_wall], "series": d.series,
    }
    summary.update(
        {
            "max_size": max_size,
            "force_zero": force_zero,
            "scale_in_from": scale_in["from"],
            "multiple_windows": len(windows) > 1,
        }
    )
    title, subtitle, marks = chart_text(summary)
    summary.update({"title": title, "subtitle": subtitle, "marks": marks})
    out_dir = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed"))
    (out_dir / "demo.json").write_text(json.dumps(summary, indent=1))
    shown = os.path.relpath(chart, REPO) if Path(chart).resolve().is_relative_to(REPO) else chart
    write_chart(d.series, marks, chart, title, subtitle)
    print(f"  chart             {shown} (numbers: {out_dir / 'demo.json'})")
    return 0 if cut == 0 and failures <= 0 else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--redraw"]:
        default = Path(os.environ.get("TESTBED_DIR", REPO / ".testbed/demo")) / "demo.json"
        sys.exit(redraw(sys.argv[2] if len(sys.argv) > 2 else default, os.environ.get("DEMO_CHART", str(REPO / "docs/demo.svg"))))
    sys.exit(main())
