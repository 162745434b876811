"""``python -m bench [--quick] [--json out.json] [--only NAME,...]``: run every benchmark."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

from .core import Row

#: Benchmark modules in run order.
BENCHES = ["fanout", "parallel", "memory", "frontend", "vclock", "dispatch", "native_loops",
           "llvm_startup",
           "runaway",
           "editor", "schedsim", "schedule", "journal", "observability", "serve", "ray_executor",
           "models"]


def run_all(mode: str, only: list[str] | None = None, progress: Any = None) -> list[Row]:
    import importlib

    rows: list[Row] = []
    for name in BENCHES:
        if only and name not in only:
            continue
        if progress:
            progress(name)
        mod = importlib.import_module(f"bench.{name}")
        try:
            rows.extend(mod.run(mode))
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the rest
            rows.append(Row(name, {}, None, "", note=f"error: {exc}"[:300]))
    return rows


def _fmt(x: float | None) -> str:
    if x is None:
        return "—"
    a = abs(x)
    if a >= 100_000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def render(rows: list[Row], console: Any) -> None:
    from rich.table import Table

    t = Table(title="cxpar benchmarks (median [min–max])", show_lines=False)
    for col, just in (("benchmark", "left"), ("params", "left"), ("value", "right"),
                      ("unit", "left"), ("baseline", "right"), ("ratio", "right"),
                      ("target", "left"), ("met", "center")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        params = " ".join(f"{k}={v}" for k, v in r.params.items())
        if r.value is None:
            t.add_row(r.name, params, "[dim]" + (r.note or "—") + "[/dim]", "", "", "",
                      r.target, "")
            continue
        val = _fmt(r.value) + (f" [dim][{_fmt(r.spread[0])}–{_fmt(r.spread[1])}][/dim]"
                               if r.spread and r.reps > 1 else "")
        base = "—"
        if r.baseline is not None:
            base = _fmt(r.baseline) + (f" [dim][{_fmt(r.baseline_spread[0])}–"
                                       f"{_fmt(r.baseline_spread[1])}][/dim]"
                                       if r.baseline_spread and r.reps > 1 else "")
            base += f"\n[dim]{r.baseline_name}[/dim]"
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: ""}[r.met]
        t.add_row(r.name, params, val, r.unit, base,
                  "—" if r.ratio is None else f"{r.ratio:.2f}×", r.target, met)
    console.print(t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (< 2 minutes)")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", metavar="OUT", help="also write the rows as JSON")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {BENCHES}")
    ns = ap.parse_args(argv)
    from rich.console import Console

    console = Console(stderr=False, width=None if sys.stdout.isatty() else 150)
    mode = "tiny" if ns.tiny else ("quick" if ns.quick else "full")
    only = [x.strip() for x in ns.only.split(",") if x.strip()] or None
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    rows = run_all(mode, only, progress=lambda n: console.print(f"[dim]running {n}…[/dim]"))
    elapsed = time.perf_counter() - t0
    load1 = os.getloadavg()
    render(rows, console)
    info = {"mode": mode, "elapsed_s": round(elapsed, 1), "python": sys.version.split()[0],
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in load0],
            "loadavg_end": [round(x, 2) for x in load1]}
    console.print(f"[dim]{mode} run in {elapsed:.0f} s; python {info['python']}; "
                  f"{info['cpus']} CPUs; load average {load0[0]:.2f} → {load1[0]:.2f}[/dim]")
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as f:
            json.dump({"info": info, "rows": [r.to_json() for r in rows]}, f, indent=1,
                      ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
