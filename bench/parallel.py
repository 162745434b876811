"""Parallel vs sequential: K branches of 100 ms as parallel handler parameters
(``await { durationMs: 0, b0: step.s0, …, bK: step.sK }``) vs the same handlers as a
sequential ``handlers: [step.s0, …]`` list. Real clock; the handlers are CX
(``await { durationMs: 100 }; return …;``). Target (SPEC §8): K=3 ≤ 0.34×.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .core import Row, child, compare, compile_cx, run_cx

HANDLER = """
on step.s{i} (event) {{
    await {{ durationMs: {ms} }};
    return {i};
}}
"""


def program(k: int, ms: int = 100) -> str:
    return "".join(HANDLER.format(i=i, ms=ms) for i in range(k))


def measure(k: int, reps: int, ms: int = 100) -> dict[str, list[float]]:
    """(child) Wall seconds of the parallel and the sequential call, interleaved."""
    compiled = compile_cx(program(k, ms))
    branches = [(f"b{i}", f"step.s{i}", None) for i in range(k)]
    items = [(f"step.s{i}", None) for i in range(k)]

    async def body(rt: Any) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {"parallel": [], "sequential": []}
        for r in range(reps + 1):
            for kind in (("parallel", "sequential") if r % 2 else ("sequential", "parallel")):
                gc.collect()
                t0 = time.perf_counter()
                if kind == "parallel":
                    res = await rt.service("await", -1, {"durationMs": 0.0}, branches)
                    if res.get("_errors") or res["b0"] != 0:
                        raise RuntimeError(f"parallel call failed: {res}")
                else:
                    await rt.service("await", -1, {"durationMs": 0.0}, (), items)
                dt = time.perf_counter() - t0
                if r:
                    out[kind].append(dt)
        return out

    return run_cx(compiled, body, clock="real")


def run(mode: str) -> list[Row]:
    rows = []
    reps = {"tiny": 1, "quick": 5, "full": 9}[mode]
    ms = 10 if mode == "tiny" else 100
    for k in (3, 10):
        res = child("parallel", "measure", k=k, reps=reps, ms=ms)
        par = [x * 1000 for x in res["parallel"]]
        seq = [x * 1000 for x in res["sequential"]]
        rows.append(compare("parallel_vs_sequential", {"branches": k, "branch_ms": ms},
                            par, seq, "ms", baseline_name="handlers: [...] (sequential)",
                            target="ratio ≤ 0.34" if k == 3 else "(ideal 0.10)",
                            check=(lambda x: x <= 0.34) if k == 3 else None))
    return rows
