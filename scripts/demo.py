#!/usr/bin/env python3
"""`make demo`: the whole product on the embedded local default, no AWS account.

Starts nothing itself (scripts/demo.sh starts the test bed, which seeds the pool, and
`cargo lambda watch`); this script points the test bed's schedule and lifecycle events at the two
functions running under `cargo lambda watch`, and drives a compressed stretch of a working
day of recording demand through the Jitsi emulator, with real boot delays on the test-bed
clock. Every tick is the real pool-controller Lambda invoked by the test bed's schedule;
every terminate lifecycle action is delivered to the real termination-guard Lambda.

It prints one status line per simulated minute and a final report. Only 127.0.0.0/8 is
ever dialed.
"""

import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request

import boto3
from botocore.config import Config

GROUP = "jibri-pool"
ACCOUNT = "123456789012"


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"demo: {name} is not set (run through `make demo`)")
    if not value.startswith("http://127."):
        sys.exit(f"demo: refusing non-loopback {name}={value}")
    return value


AWS = env("AWS_ENDPOINT_URL")
JITSI = env("JITSI_EMULATOR_URL")
WATCH = env("LAMBDA_WATCH_URL")


def call(method, url, body=None, timeout=30):
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
    return boto3.client("autoscaling", **kw), boto3.client("ec2", **kw), boto3.client("s3", **kw)


def demand_rate(minute_of_day):
    """Recording starts per minute: office hours, bunched at :00 and :30."""
    hour = minute_of_day / 60
    base = 0.15 + 0.6 * math.exp(-((hour - 11) ** 2) / 8) + 0.5 * math.exp(-((hour - 15) ** 2) / 6)
    m = minute_of_day % 30
    burst = 4.0 if m < 3 else 1.0
    return base * burst


def write_chart(series, path="target/demo/demo.svg"):
    """Busy, idle and desired capacity per simulated minute, and the requests, as an SVG."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w, h, pad = 900, 320, 40
    top = max([max(d, b + i) for _, _, b, i, d in series] + [1])
    n = max(len(series) - 1, 1)

    def line(values, colour, label, dy):
        pts = " ".join(
            f"{pad + k * (w - 2 * pad) / n:.1f},{h - pad - v * (h - 2 * pad) / top:.1f}" for k, v in enumerate(values)
        )
        return (
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>'
            f'<text x="{w - pad + 5}" y="{pad + dy}" fill="{colour}">{label}</text>'
        )

    start = series[0][0] if series else 0
    body = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w + 80}" height="{h}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{pad}" y="20">make demo: {len(series)} minutes from {start // 60:02d}:{start % 60:02d}, max {top}</text>',
        f'<rect x="{pad}" y="{pad}" width="{w - 2 * pad}" height="{h - 2 * pad}" fill="none" stroke="#999"/>',
        line([d for *_, d in series], "#1f77b4", "desired", 0),
        line([b for _, _, b, _, _ in series], "#d62728", "busy", 16),
        line([i for _, _, _, i, _ in series], "#2ca02c", "idle", 32),
        line([a for _, a, *_ in series], "black", "requests/min", 48),
        "</svg>",
    ]
    with open(path, "w") as f:
        f.write("\n".join(body))
    return path


def main():
    hours = float(os.environ.get("DEMO_HOURS", "3"))
    start_hour = float(os.environ.get("DEMO_START_HOUR", "9.5"))
    seed_value = int(os.environ.get("DEMO_SEED", "7"))
    boot_delay = float(os.environ.get("DEMO_BOOT_DELAY_S", "180"))
    rng = random.Random(seed_value)
    asg, _, _ = clients()
    testbed("POST", "config", {"boot_delay_s": boot_delay})
    # The schedule: the controller every minute of test-bed time; lifecycle events to the guard.
    testbed(
        "POST",
        "config",
        {
            "lifecycle_event_url": f"{WATCH}/2015-03-31/functions/termination-guard/invocations",
            "schedule_url": f"{WATCH}/2015-03-31/functions/pool-controller/invocations",
            "schedule_period_s": 60,
            "delivery_timeout_s": 300,
        },
    )
    print(f"demo: pool {GROUP}; {hours} h from {start_hour:.1f}h, boot delay {boot_delay:.0f} s (test-bed clock)")
    print("demo: first tick compiles the functions under cargo lambda watch (about a minute)...", flush=True)
    active = {}  # recorder -> end minute
    series = []  # (minute, asked, busy, idle, desired) per simulated minute
    stats = {"requests": 0, "refused": 0, "instance_minutes": 0, "ticks": 0}
    steps = int(hours * 60)
    deliveries_seen = 0
    for step in range(steps):
        minute = int(start_hour * 60) + step
        testbed("POST", "clock/advance", {"seconds": 60})
        # Wait for this minute's controller invocation to be answered.
        deadline = time.time() + (300 if step == 0 else 30)
        while time.time() < deadline:
            deliveries = testbed("GET", "deliveries")
            done = [d for d in deliveries if d.get("kind") == "scheduled" and (d.get("status") or d.get("error"))]
            if len(done) > deliveries_seen:
                deliveries_seen = len(done)
                stats["ticks"] += 1
                break
            time.sleep(0.1)
        time.sleep(0.7)  # the emulator follows the group every 500 ms
        # Recordings that end now.
        for rec, end in list(active.items()):
            if end <= minute:
                control("POST", f"recorders/{rec}/stop-recording")
                del active[rec]
        # New requests: Jicofo hands each an idle recorder at once, or refuses.
        n = sum(1 for _ in range(20) if rng.random() < demand_rate(minute % 1440) / 20)
        for _ in range(n):
            stats["requests"] += 1
            status, out = control("POST", "jicofo/default/request-recording")
            if status == 200:
                active[out["recorder"]] = minute + max(5, int(rng.lognormvariate(math.log(35), 0.6)))
            else:
                stats["refused"] += 1
        insts = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
        states = [i["LifecycleState"] for i in insts["Instances"]]
        stats["instance_minutes"] += len(states)
        _, st = control("GET", "state")
        recs = st.get("recorders", []) if isinstance(st, dict) else []
        busy = sum(1 for r in recs if r.get("status") == "BUSY")
        idle = sum(1 for r in recs if r.get("available"))
        series.append((minute, n, busy, idle, insts["DesiredCapacity"]))
        print(
            f"{minute // 60:02d}:{minute % 60:02d} demand+{n:<2} busy {busy:>2} idle {idle:>2} "
            f"desired {insts['DesiredCapacity']:>2} pending {sum(s.startswith('Pending') for s in states):>2} "
            f"held {states.count('Terminating:Wait'):>2} retained {states.count('Terminating:Retained'):>2} "
            f"| requests {stats['requests']:>3} refused {stats['refused']:>3}",
            flush=True,
        )
    shard = control("GET", "jicofo/default")[1] or {}
    cut = max(0, shard.get("total_recording_failures", 0) - stats["refused"])
    print()
    print("demo report")
    print(f"  controller ticks            {stats['ticks']}")
    print(f"  recording requests          {stats['requests']}")
    refused_pct = 100.0 * stats["refused"] / max(1, stats["requests"])
    print(f"  refused (no idle recorder)  {stats['refused']} ({refused_pct:.1f} %)")
    print(f"  recordings cut              {cut}")
    print(f"  instance-hours              {stats['instance_minutes'] / 60:.1f}")
    print(f"  function logs               .testbed/watch.log")
    print(f"  chart                       {write_chart(series)}")
    return 0 if cut == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
