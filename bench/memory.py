"""Memory: peak RSS per in-flight handler, N handlers sleeping at once, vs hand-written
asyncio. Each (implementation, N) runs in its own interpreter; the per-handler figure is
``(maxrss(N) − maxrss(N=0)) / N`` (``resource.getrusage``), i.e. against a baseline process
that does everything but the N handlers.

All run on the virtual clock (``VirtualEventLoop``, a selector loop), so every handler is
in flight at the same instant however long the fan-out takes; the asyncio baseline uses
the same loop class.

* ``memory.cx``: N ``Worker`` instances subscribed to ``bench.branch`` (CX body
  ``await { durationMs: 1000 }; return 1;``), one call fans out to all of them. The
  delta includes the N instances and subscriptions (static program state) — the
  ``in_flight_only`` extra excludes them (same process, RSS before vs after the call).
* ``memory.machinery``: N Python subscribers sleeping 1 s (fan-out/join state only).
* baseline: ``asyncio.gather`` of N coroutines sleeping 1 s.
"""

from __future__ import annotations

import asyncio
import gc
import resource
from typing import Any

from .core import Row, child, compare, compile_cx, med, run_cx

CX_PROGRAM = """
object Worker {
    on bench.branch (event) {
        await { durationMs: 1000 };
        return 1;
    }
}

var i = 0;
while (i < N) {
    new Worker();
    i += 1;
}
"""

SIZES = {"tiny": [200], "quick": [1000, 10_000], "full": [1000, 10_000, 100_000]}


def _maxrss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


async def _py_branch(rt: Any, self: Any, event: Any) -> float:
    await asyncio.sleep(1.0)
    return 1.0


async def _plain() -> float:
    await asyncio.sleep(1.0)
    return 1.0


def measure(impl: str, n: int) -> dict[str, int]:
    """(child) maxrss (KB) before the N handlers start and at the end."""
    compiled = compile_cx(CX_PROGRAM.replace("N", str(n if impl == "cx" else 0)))
    marks: dict[str, int] = {}

    async def body(rt: Any) -> None:
        if impl == "machinery":
            for _ in range(n):
                rt.on("bench.py", _py_branch)
        gc.collect()
        marks["before"] = _maxrss_kb()
        if impl == "asyncio":
            res = await asyncio.gather(*[_plain() for _ in range(n)])
            assert len(res) == n
        else:
            event = "bench.branch" if impl == "cx" else "bench.py"
            await rt.service("await", -1, {"durationMs": 0.0}, [("k", event, None)])

    # a run may report "no handler" for N=0 (exit 3): that is fine here
    try:
        run_cx(compiled, body, clock="virtual")
    except RuntimeError:
        if n:
            raise
    marks["after"] = _maxrss_kb()
    return marks


def run(mode: str) -> list[Row]:
    rows = []
    impls = ("asyncio", "cx", "machinery")
    reps = 1 if mode == "tiny" else 3
    zero = {impl: [child("memory", "measure", impl=impl, n=0)["after"] for _ in range(reps)]
            for impl in impls}
    for n in SIZES[mode]:
        per: dict[str, list[float]] = {impl: [] for impl in impls}
        inflight: dict[str, list[float]] = {impl: [] for impl in impls}
        for r in range(reps):
            for impl in impls:
                m = child("memory", "measure", impl=impl, n=n)
                per[impl].append((m["after"] - zero[impl][r]) * 1024 / n)
                inflight[impl].append((m["after"] - m["before"]) * 1024 / n)
        # Peak RSS grows in pages and allocator arenas: below ~1 MB in total the
        # difference from the N=0 process is noise, so no target is checked there.
        resolvable = med(per["asyncio"]) * n >= 1_000_000
        for impl in ("cx", "machinery"):
            rows.append(compare(f"memory.{impl}", {"N": n}, per[impl], per["asyncio"],
                                "B/handler", baseline_name="asyncio.gather (same loop)",
                                target="ratio ≤ 1.5" if resolvable else "",
                                check=(lambda x: x <= 1.5) if resolvable else None,
                                note="" if resolvable else "below RSS resolution",
                                in_flight_only=round(med(inflight[impl])),
                                baseline_in_flight_only=round(med(inflight["asyncio"]))))
    return rows
