"""Virtual clock: simulated seconds per wall second for a 10 000-event workload.

10 chains of 1 000 ``tick`` events; each CX handler does ``await { durationMs: 50 }``
then emits the next tick (50 s simulated). Baseline: the same chains hand-written
(``asyncio.sleep`` + ``create_task``) on the same ``VirtualEventLoop``.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from .core import Row, child, compare, compile_cx, run_cx

CX_PROGRAM = """
on tick (event) {
    await { durationMs: 50 };
    if (event.n < LEN) {
        emit tick { chain: event.chain, n: event.n + 1 };
    }
}
"""


def measure(chains: int, length: int, reps: int) -> dict[str, list[float]]:
    """(child) [simulated s / wall s] per repetition, CX and hand-written asyncio."""
    compiled = compile_cx(CX_PROGRAM.replace("LEN", str(length)))

    async def body(rt: Any) -> dict[str, list[float]]:
        loop = asyncio.get_running_loop()
        out: dict[str, list[float]] = {"cx": [], "asyncio": []}

        async def plain(chain: int, n: int, done: asyncio.Future[None],
                        left: list[int]) -> None:
            await asyncio.sleep(0.05)
            if n < length:
                loop.create_task(plain(chain, n + 1, done, left))
            else:
                left[0] -= 1
                if left[0] == 0:
                    done.set_result(None)

        for r in range(reps + 1):
            for kind in ("cx", "asyncio") if r % 2 else ("asyncio", "cx"):
                gc.collect()
                v0, t0 = loop.time(), time.perf_counter()
                if kind == "cx":
                    for c in range(chains):
                        rt.emit("tick", {"chain": float(c), "n": 1.0})
                    await rt.quiesce()
                else:
                    done: asyncio.Future[None] = loop.create_future()
                    left = [chains]
                    for c in range(chains):
                        loop.create_task(plain(c, 1, done, left))
                    await done
                wall, sim = time.perf_counter() - t0, loop.time() - v0
                if abs(sim - length * 0.05) > 1e-6:
                    raise RuntimeError(f"unexpected simulated time {sim}")
                if r:
                    out[kind].append(sim / wall)
        return out

    return run_cx(compiled, body, clock="virtual")


def run(mode: str) -> list[Row]:
    chains, length = (10, 1000) if mode != "tiny" else (10, 20)
    reps = {"tiny": 1, "quick": 3, "full": 5}[mode]
    res = child("vclock", "measure", chains=chains, length=length, reps=reps)
    return [compare("vclock.sim_s_per_wall_s", {"events": chains * length,
                                                "simulated_s": length * 0.05},
                    res["cx"], res["asyncio"], "sim s/wall s",
                    baseline_name="hand-written asyncio, same virtual loop",
                    target="30 s simulated in < 1 s wall (≥ 30)", check=lambda x: x >= 30,
                    on="value")]
