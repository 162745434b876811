"""Backends: dispatch throughput (emits/s) on an emit-heavy program.

A CX handler emits ``bench.tick`` N times in a ``while`` loop; one trivial CX handler
subscribes. Measured from the emit of ``bench.burst`` to quiescence (every tick handler
finished), so it includes the CX loop, the emits (one task per subscriber, payload
copy) and running the handlers. Baseline: hand-written asyncio creating N tasks of a
trivial coroutine and waiting for them, on the same loop (uvloop, real clock).
``dispatch.llvm``: the same program with ``--backend llvm``'s JIT'd router
(``cxpar.codegen.llvm.backend.prepare`` / ``with_router``), vs the python backend
measured in its own child right before; skipped when the backend is unavailable.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import time
from typing import Any

from .core import Row, child, compare, compile_cx, run_cx, skipped

CX_PROGRAM = """
on bench.tick (event) {
    return event.i;
}

on bench.burst (event) {
    var i = 0;
    while (i < event.n) {
        emit bench.tick { i: i };
        i += 1;
    }
}
"""


async def _plain(event: dict[str, Any]) -> Any:
    return event["i"]


def measure(n: int, reps: int, backend: str = "python") -> dict[str, list[float]]:
    """(child) emits/s per repetition for the backend and hand-written asyncio."""
    compiled = compile_cx(CX_PROGRAM)
    if backend == "llvm":
        from cxpar.codegen.llvm import backend as llvm_backend

        compiled.program = llvm_backend.with_router(
            compiled.program, llvm_backend.prepare(compiled.compilation))

    async def body(rt: Any) -> dict[str, list[float]]:
        loop = asyncio.get_running_loop()
        out: dict[str, list[float]] = {"cx": [], "asyncio": []}
        for r in range(reps + 1):
            for kind in ("cx", "asyncio") if r % 2 else ("asyncio", "cx"):
                gc.collect()
                t0 = time.perf_counter()
                if kind == "cx":
                    rt.emit("bench.burst", {"n": float(n)})
                    await rt.quiesce()
                else:
                    tasks = [loop.create_task(_plain({"i": float(i)})) for i in range(n)]
                    await asyncio.wait(tasks)
                dt = time.perf_counter() - t0
                if r:
                    out[kind].append(n / dt)
        return out

    return run_cx(compiled, body, clock="real")


def llvm_available() -> str | None:
    """None when the llvm backend can JIT here, else why not."""
    if importlib.util.find_spec("cxpar.codegen.llvm") is None:
        return "no llvm backend in this build"
    try:
        from cxpar.codegen.llvm import backend as llvm_backend
        llvm_backend.prepare(compile_cx(CX_PROGRAM).compilation)
    except Exception as exc:  # noqa: BLE001 - BackendUnavailable or anything else
        return f"llvm backend unavailable: {exc}"
    return None


def run(mode: str) -> list[Row]:
    n = {"tiny": 1000, "quick": 50_000, "full": 200_000}[mode]
    reps = {"tiny": 1, "quick": 3, "full": 5}[mode]
    res = child("dispatch", "measure", n=n, reps=reps)
    rows = [compare("dispatch.python", {"emits": n}, res["cx"], res["asyncio"],
                    "emits/s", baseline_name="asyncio create_task loop")]
    why = llvm_available()
    if why is not None:
        rows.append(skipped("dispatch.llvm", {"emits": n}, why, target="≥ 2× python"))
        return rows
    py = child("dispatch", "measure", n=n, reps=reps)["cx"]
    ll = child("dispatch", "measure", n=n, reps=reps, backend="llvm")["cx"]
    rows.append(compare("dispatch.llvm", {"emits": n}, ll, py, "emits/s",
                        baseline_name="python backend", target="ratio ≥ 2",
                        check=lambda x: x >= 2.0))
    return rows
