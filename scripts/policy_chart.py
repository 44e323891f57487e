#!/usr/bin/env python3
"""The policy comparison as a picture: for each trace of `make bench-policy`, every policy's
recordings refused (and busy recorders killed) beside what it paid (instance-hours as a
multiple of the clairvoyant bound). Reads bench-policy's `--json` output, writes an SVG.

    scripts/policy_chart.py BENCH.json OUT.svg     (`make pictures` runs it)
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

ORDER = ["workday", "flash-crowd", "night-weekend", "long-recordings"]
WHAT = {
    "workday": "416 recordings, bursts at :00 and :30",
    "flash-crowd": "48 recordings start within 2 minutes",
    "night-weekend": "38 recordings over a weekend",
    "long-recordings": "2–10 h recordings and meetings",
}
ROW, LABEL, BAR, GAP = 17, 370, 200, 150
COST_CAP = 4.0


def colour(policy: str) -> str:
    if policy.startswith("ours"):
        return "#1f77b4"
    if policy.startswith("clairvoyant"):
        return "#2ca02c"
    return "#8c8c8c"


def panel(comp: dict, x0: float, y0: float) -> tuple[list[str], float]:
    rows = comp["rows"]
    out = []
    e = html.escape
    out.append(f'<text x="{x0}" y="{y0 + 14}" font-size="14" font-weight="bold">{e(comp["trace"])}</text>')
    out.append(f'<text x="{x0 + 130}" y="{y0 + 14}" fill="#666">{e(WHAT.get(comp["trace"], ""))}</text>')
    head = y0 + 34
    bx, cx = x0 + LABEL, x0 + LABEL + BAR + GAP
    out.append(f'<text x="{bx}" y="{head}" fill="#333">recordings refused (%)</text>')
    out.append(f'<text x="{cx}" y="{head}" fill="#333">instance-hours ÷ bound</text>')
    top = head + 8
    bottom = top + len(rows) * ROW
    # Axis marks first (under the bars): 0/50/100 % and 0×..4×.
    for v in (0, 50, 100):
        xx = bx + BAR * v / 100
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{bottom}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{xx:.1f}" y="{bottom + 12}" text-anchor="middle" fill="#999" font-size="10">{v}</text>')
    for v in range(0, int(COST_CAP) + 1):
        xx = cx + BAR * v / COST_CAP
        out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top}" y2="{bottom}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{xx:.1f}" y="{bottom + 12}" text-anchor="middle" fill="#999" font-size="10">{v}×</text>')
    for i, r in enumerate(rows):
        y = top + i * ROW
        c = colour(r["policy"])
        weight = ' font-weight="bold"' if r["policy"] in ("ours (defaults)", "ours + warm pool") else ""
        out.append(f'<text x="{bx - 8}" y="{y + 12}" text-anchor="end"{weight}>{e(r["policy"])}</text>')
        # Refused, 0-100 %.
        w = BAR * min(r["refused_pct"], 100.0) / 100.0
        out.append(f'<rect x="{bx}" y="{y + 3}" width="{max(w, 0.5):.1f}" height="{ROW - 6}" fill="{c}" opacity="0.85"/>')
        label = f'{r["refused_pct"]:.1f} %'
        if r["busy_killed"]:
            label += f' · {r["busy_killed"]} busy killed'
        fill = "#d62728" if r["busy_killed"] else "#333"
        out.append(f'<text x="{bx + w + 4:.1f}" y="{y + 12}" fill="{fill}">{label}</text>')
        # Cost, capped.
        ratio = r["cost_ratio"]
        w = BAR * min(ratio, COST_CAP) / COST_CAP
        out.append(f'<rect x="{cx}" y="{y + 3}" width="{w:.1f}" height="{ROW - 6}" fill="{c}" opacity="0.85"/>')
        text = f"{ratio:.2f}×" + (" ▸" if ratio > COST_CAP else "")
        out.append(f'<text x="{cx + w + 4:.1f}" y="{y + 12}">{text}</text>')
    return out, bottom + 24 - y0


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.loads(Path(sys.argv[1]).read_text())
    comps = sorted(data, key=lambda c: ORDER.index(c["trace"]) if c["trace"] in ORDER else len(ORDER))
    width = 10 + LABEL + 2 * BAR + GAP + 80
    body, y = [], 56.0
    for c in comps:
        part, height = panel(c, 10, y)
        body += part
        y += height + 14
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y:.0f}" viewBox="0 0 {width} {y:.0f}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        '<text x="10" y="22" font-size="16" font-weight="bold">Every policy on the same traces: what it refused, what it paid</text>',
        '<text x="10" y="40" fill="#666">make bench-policy (seed 1): our plan() (blue) after a week of history, the field\'s '
        "baselines (grey), the clairvoyant bound (green); cost beyond 4× is cut (▸)</text>",
    ]
    Path(sys.argv[2]).parent.mkdir(parents=True, exist_ok=True)
    Path(sys.argv[2]).write_text("\n".join(head + body + ["</svg>"]) + "\n")
    print(sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
