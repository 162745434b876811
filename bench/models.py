"""Issue 20: what per-call model options cost on the runtime's side.

N sequential ``think`` calls on the sim (latency 0, virtual clock), timed from Python
(the variants interleaved in every repetition):
µs per call for a plain call (the baseline) and for calls with ``model``/``endpoint``
(routing), an ``rpm`` limit that never binds (the rate limiter's bookkeeping), a
``schema`` (the sim's sample plus ``jsonschema`` validation of every answer) and one
tool (two rounds and a branch-like tool invocation per call). Ratios are measured in
one run; the machine's load moves the absolute numbers.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .core import Row, child, compare, compile_cx

PROGRAM = """
on lookup.tool (a) { return 1; }
"""
SCHEMA = {"type": "object", "properties": {"team": {"enum": ["a", "b"]},
                                           "n": {"type": "integer"}},
          "required": ["team", "n"]}
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    "model_endpoint": {"model": "m", "endpoint": "sim"},
    "rpm_limit": {},
    "schema": {"schema": SCHEMA},
    "tools": {"tools": [{"event": "lookup.tool", "doc": None}]},
}


def measure(calls: int, reps: int) -> dict[str, list[float]]:
    """(child) µs per call per repetition, for each variant."""
    import asyncio
    import io

    from cxpar.runtime import run_program
    from cxpar.runtime.settings import EndpointSettings, RunSettings

    compiled = compile_cx(PROGRAM)
    out: dict[str, list[float]] = {k: [] for k in VARIANTS}

    def once(name: str, kw: dict[str, Any], record: bool) -> None:
        eps = {"sim": EndpointSettings(rpm=1e9)} if name == "rpm_limit" else {}
        settings = RunSettings(clock="virtual", timeout_ms=None, latency={"think": 0},
                               endpoints=eps, guard_s=3600)
        holder: list[Any] = []

        def setup(rt: Any) -> None:
            holder.append(compiled.program(rt))

        async def main(rt: Any) -> None:
            await holder[0](rt)
            gc.collect()
            t0 = time.perf_counter()
            for i in range(calls):
                p = await rt.service("think", 0, {"prompt": f"q{i}"}, **kw)
                assert p["result"] is not None, p
            dt = time.perf_counter() - t0
            if record:
                out[name].append(dt / calls * 1e6)
            await asyncio.sleep(0)

        code = run_program(main, settings, spans=compiled.spans, sources=compiled.sources,
                           stdout=io.StringIO(), stderr=io.StringIO(), setup=setup)
        if code != 0:
            raise RuntimeError(f"benchmark variant {name} failed")

    # variants interleaved within each repetition, so load changes hit them alike
    for r in range(reps + 1):
        for name, kw in VARIANTS.items():
            once(name, kw, record=r > 0)
    return out


def run(mode: str) -> list[Row]:
    calls = {"tiny": 20, "quick": 2000, "full": 10000}[mode]
    reps = {"tiny": 1, "quick": 3, "full": 5}[mode]
    res = child("models", "measure", calls=calls, reps=reps)
    rows = []
    for name in VARIANTS:
        if name == "plain":
            continue
        rows.append(compare(f"models.{name}_us_per_call", {"calls": calls}, res[name],
                            res["plain"], "µs/call", baseline_name="plain think call",
                            target="model_endpoint/rpm_limit ≤ 1.2×" if name in (
                                "model_endpoint", "rpm_limit") else "",
                            check=(lambda x: x <= 1.2) if name in ("model_endpoint",
                                                                   "rpm_limit") else None))
    return rows
