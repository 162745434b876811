"""Global concurrency limit with priority queueing and aging, backoff, retry budgets (§6.2).

:class:`CircuitBreaker` lives in :mod:`.breaker` (re-exported here).
"""

from __future__ import annotations

import asyncio
import heapq
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from .breaker import CircuitBreaker

__all__ = ["Limiter", "CircuitBreaker", "RetryBudget", "backoff_s", "priority_value"]

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

    Aging (``aging_s`` > 0): waiting raises a request's priority by one level per
    ``aging_s`` seconds, so low priority never starves. All waiting work ages at the same
    rate, so the order is fixed at enqueue time: key = -(priority - enqueue_time/aging_s).
    Work enqueued at one instant keeps rule 19's order (higher first, FIFO within a level).
    """

    __slots__ = ("limit", "active", "_heap", "_seq", "aging_s")

    def __init__(self, limit: int, aging_s: float = 0.0) -> None:
        self.limit = limit
        self.active = 0
        self._heap: list[tuple[float, int, Callable[[], bool]]] = []
        self._seq = 0
        self.aging_s = aging_s

    def request(self, priority: float, start: Callable[[], bool]) -> None:
        if self.active < self.limit and not self._heap:
            self.active += 1
            if not start():
                self.release()
            return
        self._seq += 1
        key = -priority
        if self.aging_s > 0:
            key += _loop_time() / self.aging_s
        heapq.heappush(self._heap, (key, self._seq, start))

    def release(self) -> None:
        self.active -= 1
        self._drain()

    def _drain(self) -> None:
        while self._heap and self.active < self.limit:
            _, _, start = heapq.heappop(self._heap)
            self.active += 1
            if start():
                continue
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


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0


class RetryBudget:
    """Retries may use at most ``ratio`` of the first attempts of the last ``ttl_s``
    seconds, plus ``reserve`` (so a quiet service can still retry a little): a dead
    endpoint is not hammered by every call's ``retries``."""

    __slots__ = ("ratio", "reserve", "ttl_s", "_calls", "_retries", "denied")

    def __init__(self, ratio: float = 0.2, reserve: int = 10, ttl_s: float = 10.0) -> None:
        self.ratio = ratio
        self.reserve = reserve
        self.ttl_s = ttl_s
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()
        #: Retries refused so far.
        self.denied = 0

    def _prune(self, now: float) -> None:
        edge = now - self.ttl_s
        for d in (self._calls, self._retries):
            while d and d[0] <= edge:
                d.popleft()

    def on_call(self, now: float) -> None:
        """A first attempt started."""
        self._calls.append(now)

    def try_retry(self, now: float) -> bool:
        """Whether a retry may start now (and count it if so)."""
        self._prune(now)
        if len(self._retries) + 1 > self.reserve + self.ratio * len(self._calls):
            self.denied += 1
            return False
        self._retries.append(now)
        return True
