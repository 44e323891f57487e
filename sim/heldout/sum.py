#!/usr/bin/env python3
"""Sums a bench-policy table over many traces (issue 15's 30 nights).

  sum.py TABLE.txt [POLICY]

Per policy: refusals, traces with a refusal, instance-hours. Then, per trace, whether
POLICY (default "ours (defaults)") refused none at no more instance-hours than every
baseline that failed no recording on that trace: every row but ours, the clairvoyant bound
and the online floor (bench-policy's `is_baseline`). Standard library only.
"""
import sys
from collections import defaultdict

NOT_BASELINES = ("ours", "clairvoyant", "online floor")


def rows(path):
    for line in open(path, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 7 or not cells[2].isdigit():
            continue
        trace, policy, refused, killed, hours = cells[0], cells[1], int(cells[3]), int(cells[5]), float(cells[6])
        yield trace, policy, refused, killed, hours


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    ours = argv[2] if len(argv) == 3 else "ours (defaults)"
    total = defaultdict(lambda: [0, 0, 0, 0.0])
    by_trace = defaultdict(dict)
    for trace, policy, refused, killed, hours in rows(argv[1]):
        t = total[policy]
        t[0] += refused
        t[1] += refused > 0
        t[2] += 1
        t[3] += hours
        by_trace[trace][policy] = (refused, killed, hours)
    for policy, (r, n, k, h) in sorted(total.items()):
        print(f"{policy[:70]:70} refused {r:4}  traces with a refusal {n:2}/{k}  instance-hours {h:8.1f}")
    met = 0
    for trace, policies in sorted(by_trace.items()):
        if ours not in policies:
            continue
        r, _, h = policies[ours]
        clean = [(hh, p) for p, (rr, kk, hh) in policies.items()
                 if not p.startswith(NOT_BASELINES) and rr + kk == 0]
        cheapest = min(clean) if clean else None
        ok = r == 0 and (cheapest is None or h <= cheapest[0])
        met += ok
        if not ok:
            other = f"{cheapest[1]} {cheapest[0]:.1f} h" if cheapest else "none"
            print(f"{trace}: {ours} refused {r} at {h:.1f} h; cheapest baseline refusing none: {other}")
    print(f"{ours}: goal met on {met} of {sum(ours in p for p in by_trace.values())} traces")


if __name__ == "__main__":
    main(sys.argv)
