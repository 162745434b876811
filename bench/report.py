"""``python -m bench.report rows.json``: the JSON of a run as a Markdown table + ASCII chart
(used to write ``docs/performance.md``)."""

from __future__ import annotations

import json
import sys
from typing import Any

from .__main__ import _fmt


def table(rows: list[dict[str, Any]]) -> str:
    out = ["| benchmark | params | value [min–max] | unit | baseline [min–max] | ratio | "
           "target | met |", "|---|---|---:|---|---:|---:|---|---|"]
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r["params"].items())
        if r["value"] is None:
            out.append(f"| {r['name']} | {params} | {r['note']} | | | | {r['target']} | |")
            continue
        v = _fmt(r["value"])
        if r["spread"] and r["reps"] > 1:
            v += f" [{_fmt(r['spread'][0])}–{_fmt(r['spread'][1])}]"
        b = "—"
        if r["baseline"] is not None:
            b = _fmt(r["baseline"])
            if r["baseline_spread"] and r["reps"] > 1:
                b += f" [{_fmt(r['baseline_spread'][0])}–{_fmt(r['baseline_spread'][1])}]"
            b += f" ({r['baseline_name']})"
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        met = {True: "yes", False: "**no**", None: ""}[r["met"]]
        out.append(f"| {r['name']} | {params} | {v} | {r['unit']} | {b} | {ratio} | "
                   f"{r['target']} | {met} |")
    return "\n".join(out)


def chart(rows: list[dict[str, Any]], width: int = 50) -> str:
    """Per-branch overhead vs N (log scale bars) for the fan-out rows."""
    fan = [r for r in rows if r["name"] in ("fanout.cx", "fanout.machinery")
           and r["value"] is not None]
    series: list[tuple[str, int, float]] = []
    for r in fan:
        series.append((r["name"].split(".")[1], r["params"]["N"], r["value"]))
    for r in fan:
        if r["name"] == "fanout.machinery":
            series.append(("gather", r["params"]["N"], r["baseline"]))
    if not series:
        return ""
    top = max(v for _, _, v in series)
    lines = ["per-branch overhead, µs (bar length linear, max = "
             f"{_fmt(top)} µs)"]
    for n in sorted({n for _, n, _ in series}):
        for name in ("cx", "machinery", "gather"):
            for s, sn, v in series:
                if s == name and sn == n:
                    bar = "█" * max(1, round(v / top * width)) if v > 0 else ""
                    lines.append(f"N={n:<7} {name:<9} {bar} {_fmt(v)}")
    return "\n".join(lines)


def main() -> None:
    data = json.load(open(sys.argv[1], encoding="utf-8"))
    print(json.dumps(data["info"]))
    print()
    print(table(data["rows"]))
    print()
    print("```")
    print(chart(data["rows"]))
    print("```")


if __name__ == "__main__":
    main()
