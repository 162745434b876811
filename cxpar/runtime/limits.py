"""Global concurrency limit with priority queueing, backoff and circuit breakers (§6.2)."""

from __future__ import annotations

import asyncio
import heapq
import random
from collections.abc import Callable
from typing import Any

__all__ = ["Limiter", "CircuitBreaker", "backoff_s", "priority_value"]

PRIORITIES = {"high": 1.0, "normal": 0.0, "low": -1.0}


def priority_value(p: Any) -> float | None:
    """``"high"``=1, ``"normal"``=0, ``"low"``=-1, numbers as is; None if invalid."""
    if p is None:
        return 0.0
    if type(p) is str:
        return PRIORITIES.get(p)
    if type(p) in (float, int):
        return float(p)
    return None


def backoff_s(retry_index: int, rng: random.Random) -> float:
    """Delay before retry ``retry_index`` (0-based): 100 ms·2ⁿ capped at 10 s, ±20 % jitter, in whole ms."""
    base = min(0.1 * (2 ** min(retry_index, 20)), 10.0)
    return round(base * (0.8 + 0.4 * rng.random()), 3)  # whole ms


class Limiter:
    """At most ``limit`` units of work at once; waiting work starts by priority, then FIFO.

    ``request(priority, start)`` calls ``start()`` now or later; ``start`` returns False
    when its work was abandoned meanwhile (the slot then goes to the next in line).
    Every accepted start must be followed by exactly one ``release()``.
    """

    __slots__ = ("limit", "active", "_heap", "_seq")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._heap: list[tuple[float, int, Callable[[], bool]]] = []
        self._seq = 0

    def request(self, priority: float, start: Callable[[], bool]) -> None:
        if self.active < self.limit and not self._heap:
            self.active += 1
            if not start():
                self.release()
            return
        self._seq += 1
        heapq.heappush(self._heap, (-priority, self._seq, start))

    def release(self) -> None:
        self.active -= 1
        while self._heap and self.active < self.limit:
            _, _, start = heapq.heappop(self._heap)
            self.active += 1
            if start():
                return
            self.active -= 1

    async def acquire(self, priority: float) -> None:
        """Wait for a slot (for coroutines such as provider calls)."""
        fut = asyncio.get_running_loop().create_future()

        def start() -> bool:
            if fut.done():
                return False
            fut.set_result(None)
            return True

        self.request(priority, start)
        await fut

    @property
    def queued(self) -> int:
        return len(self._heap)


class CircuitBreaker:
    """Per-service breaker: closed → open after ``threshold`` consecutive failures;
    after ``cooldown_s`` one trial call is allowed (half-open); success closes it."""

    __slots__ = ("threshold", "cooldown_s", "failures", "opened_at", "trial")

    def __init__(self, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self.trial else "open"

    def allow(self, now: float) -> bool:
        if self.opened_at is None:
            return True
        if not self.trial and now - self.opened_at >= self.cooldown_s:
            self.trial = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.trial = False

    def failure(self, now: float) -> None:
        self.failures += 1
        if self.trial or (self.threshold > 0 and self.failures >= self.threshold):
            self.opened_at = now
            self.trial = False
