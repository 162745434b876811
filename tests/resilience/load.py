"""A closed-loop load on the sim provider with a capacity model (tests and bench)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from cxpar.runtime import run_program
from cxpar.runtime.adaptive import LimitsConfig
from cxpar.runtime.breaker import BreakerConfig
from cxpar.runtime.providers.sim import SimProvider
from cxpar.runtime.resilience import Resilience
from cxpar.runtime.settings import RunSettings


@dataclass
class LoadResult:
    done: list[tuple[float, bool, float]] = field(default_factory=list)  # (end s, ok, latency s)
    history: list[tuple[float, int]] = field(default_factory=list)
    end_s: float = 0.0
    code: int = 0

    def throughput(self, t0: float, t1: float) -> float:
        """Successful calls per second that ended in [t0, t1)."""
        n = sum(1 for t, ok, _ in self.done if ok and t0 <= t < t1)
        return n / (t1 - t0)

    def p95_ms(self, t0: float = 0.0) -> float:
        lats = sorted(lat for t, ok, lat in self.done if ok and t >= t0)
        if not lats:
            return 0.0
        return round(lats[min(len(lats) - 1, int(0.95 * len(lats)))] * 1000, 1)

    def limit_at(self, t: float, initial: int) -> int:
        cur = initial
        for when, lim in self.history:
            if when > t:
                break
            cur = lim
        return cur


def run_load(*, capacity: float = 50, calls: int = 3000, workers: int = 400,
             fixed: int | None = None, initial: int = 10, algorithm: str = "gradient",
             latency_ms: float = 800, seed: int = 0, breaker: bool = False,
             retries: int = 0) -> LoadResult:
    """``workers`` CX-style handlers each make calls back to back until ``calls`` are done.

    ``fixed``: a fixed global limit instead of the adaptive one.
    """
    res = LoadResult()
    provider = SimProvider(seed, latency_ms={"think": latency_ms},
                           capacity={"think": capacity})
    limits = LimitsConfig(adaptive=fixed is None, algorithm=algorithm, initial=initial)
    resilience = Resilience(BreakerConfig(enabled=breaker), limits)
    left = [calls]

    async def worker(rt: Any, _self: Any, _ev: Any) -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = rt.loop.time()
            p = await rt.service("think", -1, {"prompt": "x"},
                                 retries=float(retries) if retries else None)
            t1 = rt.loop.time()
            res.done.append((t1, "_errors" not in p, t1 - t0))

    async def main(rt: Any) -> None:
        rt.on("work", worker)
        for _ in range(workers):
            rt.emit("work", {})

    def setup(rt: Any) -> None:
        rt.resilience = resilience
        rt._breakers = resilience.breakers

    settings = RunSettings(clock="virtual", seed=seed, max_concurrency=fixed, timeout_ms=None)
    res.code = run_program(main, settings, provider=provider, stdout=io.StringIO(),
                           stderr=io.StringIO(), setup=setup)
    lim = resilience.limiters.get("think")
    if lim is not None:
        res.history = list(lim.history)
    res.end_s = max((t for t, _, _ in res.done), default=0.0)
    return res
