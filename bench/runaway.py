"""Runaway programs: how long after its ``--timeout`` a busy program ends, and how long
an event flood runs before the flood guard ends it (issue 14; docs/performance.md).

Each program runs in-process on the real clock with ``--timeout T``: the row's value is
the wall time of the whole run divided by T (1.0 = ended exactly at the deadline; the
target is "within about 1 s", i.e. ≤ (T + 1 s) / T). The flood row runs the doubling
emit flood on the virtual clock with the default flood bound and reports the seconds to
the flood error (target: "within seconds"). Measured in one child process per mode; the
machine's load moves these numbers, the ratios against T much less.
"""

from __future__ import annotations

import io
import time
from typing import Any

from .core import Row, child, compare, compile_cx

PROGRAMS = {
    "while": "on a.b (e) { while (true) { } }\nemit a.b;\n",
    "nested_for_in": ("var a = []; for (var i = 0; i < 100000; i += 1) { a[i] = i; }\n"
                      "var n = 0; for (var x in a) { for (var y in a) { n += 1; } }\n"),
    "emit_flood": "on a.b (e) { emit a.b; emit a.b; }\nemit a.b;\n",
}


def measure(timeout_ms: float, reps: int, flood: bool) -> dict[str, list[float]]:
    """(child) wall seconds per repetition of each program under ``timeout_ms``."""
    from cxpar.runtime.settings import RunSettings
    from cxpar.runtime.standalone import run_factory

    out: dict[str, list[float]] = {}
    for name, text in PROGRAMS.items():
        compiled = compile_cx(text)
        for _ in range(reps):
            err = io.StringIO()
            # only the deadline may end the loops
            settings = RunSettings(clock="real", timeout_ms=timeout_ms, loop_limit_s=3600)
            t0 = time.perf_counter()
            code = run_factory(compiled.program, compiled.spans, compiled.sources, settings,
                               stdout=io.StringIO(), stderr=err)
            wall = time.perf_counter() - t0
            if code != 3 or "timed out" not in err.getvalue():
                raise RuntimeError(f"{name}: exit {code}: {err.getvalue()[:300]}")
            out.setdefault(name, []).append(wall)
    if flood:
        compiled = compile_cx(PROGRAMS["emit_flood"])
        for _ in range(reps):
            err = io.StringIO()
            t0 = time.perf_counter()
            code = run_factory(compiled.program, compiled.spans, compiled.sources,
                               RunSettings(clock="virtual"), stdout=io.StringIO(), stderr=err)
            out.setdefault("flood_guard", []).append(time.perf_counter() - t0)
            if code != 3 or "event flood" not in err.getvalue():
                raise RuntimeError(f"flood: exit {code}: {err.getvalue()[:300]}")
    return out


def run(mode: str) -> list[Row]:
    timeout_ms = {"tiny": 200.0, "quick": 2000.0, "full": 2000.0}[mode]
    reps = {"tiny": 1, "quick": 3, "full": 5}[mode]
    res: dict[str, Any] = child("runaway", "measure", timeout_ms=timeout_ms, reps=reps,
                               flood=mode != "tiny")
    limit = (timeout_ms + 1000) / timeout_ms
    rows = [compare(f"runaway.{name}_wall_per_timeout", {"timeout_ms": timeout_ms},
                    [w * 1000 / timeout_ms for w in res[name]], None, "× timeout",
                    target=f"ends within ~1 s of the deadline (≤ {limit:.2f})",
                    check=lambda x: x <= limit, on="value")
            for name in PROGRAMS]
    if "flood_guard" in res:
        rows.append(compare("runaway.flood_guard_s", {"bound": "default (500 000)"},
                            res["flood_guard"], None, "s",
                            target="a doubling emit flood ends within seconds (≤ 10)",
                            check=lambda x: x <= 10, on="value"))
    return rows
