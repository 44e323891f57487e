#!/usr/bin/env python3
"""Held-out traces for bench-policy, from a generator unlike sim/src/trace.rs's (Python's
Mersenne Twister, other shapes): workdays with bursts on :00/:30 and a lunch dip, and quiet
nights of 12 recordings over 12 h. The simulator's rules were never fitted to them.

  gen.py DIR                   heldout-workday-11/12.csv, quiet-night-21/22/23.csv
  gen.py DIR --nights 100-129  night-100.csv ... night-129.csv (issue 15's 30 nights)

Then: bench-policy --traces DIR --history none (a CSV gets no history), and sum.py on the
table it prints. Standard library only.
"""
import os
import random
import sys


def workday(seed, n_target=403):
    r = random.Random(seed)
    reqs = []
    # Hourly weight: ramp up, lunch dip at 12-13, ramp down.
    w = {7: 0.3, 8: 0.9, 9: 1.2, 10: 1.3, 11: 1.1, 12: 0.45, 13: 0.8, 14: 1.2, 15: 1.2,
         16: 1.0, 17: 0.7, 18: 0.3, 19: 0.15}
    tot = sum(w.values())
    for h, wh in w.items():
        n = int(round(n_target * wh / tot))
        for _ in range(n):
            u = r.random()
            if u < 0.5:  # :00 burst, some a minute early, most in the first 3 min
                off = int(r.gauss(60, 70))
                base = h * 3600
            elif u < 0.75:
                off = int(r.gauss(60, 70))
                base = h * 3600 + 1800
            else:
                base = h * 3600
                off = r.randrange(3600)
            s = max(0, base + off)
            d = int(60 * min(120, max(15, r.lognormvariate(3.7, 0.5))))
            reqs.append((s, d))
    return reqs


def night(seed, n=12, hours=12):
    r = random.Random(seed)
    reqs = []
    for _ in range(n):
        s = r.randrange(hours * 3600 - 3600)
        d = int(60 * min(120, max(10, r.lognormvariate(3.5, 0.5))))
        reqs.append((s, d))
    return reqs


def write(path, reqs, horizon):
    reqs.sort()
    with open(path, "w") as f:
        f.write("# held-out (gen.py)\n# horizon_s=%d\nstart_s,duration_s\n" % horizon)
        for s, d in reqs:
            f.write("%d,%d\n" % (s, d))


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--nights"):
        sys.exit(__doc__)
    out = argv[1]
    os.makedirs(out, exist_ok=True)
    if len(argv) == 4:
        lo, hi = (int(x) for x in argv[3].split("-"))
        for k in range(lo, hi + 1):
            write(f"{out}/night-{k}.csv", night(k), 12 * 3600)
        return
    for k in (11, 12):
        write(f"{out}/heldout-workday-{k}.csv", workday(k), 86400)
    for k in (21, 22, 23):
        write(f"{out}/quiet-night-{k}.csv", night(k), 12 * 3600)


if __name__ == "__main__":
    main(sys.argv)
