"""Priorities, backoff, retry budgets (SPEC §6.2); the global limit on provider calls
(:class:`Limiter`, rules 19 and 45) lives in :mod:`.schedule`.

:class:`CircuitBreaker` lives in :mod:`.breaker` (re-exported here).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from .breaker import CircuitBreaker
from .schedule import POLICIES, Limiter

__all__ = ["Limiter", "CircuitBreaker", "RetryBudget", "backoff_s", "priority_value",
           "POLICIES"]


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
