"""Global limit on provider calls with policy-ordered queueing and aging, backoff, retry
budgets (SPEC §6.2, rules 19 and 45).

:class:`CircuitBreaker` lives in :mod:`.breaker` (re-exported here).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import random
from collections import deque
from typing import Any

from .breaker import CircuitBreaker
from .flows import DEFAULT_QUANTUM_S, Flow, level_of

__all__ = ["Limiter", "CircuitBreaker", "RetryBudget", "backoff_s", "priority_value",
           "POLICIES"]

#: ``--schedule`` values: the order in which waiting provider calls get a slot.
POLICIES = ("program", "fifo")

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
    """At most ``limit`` provider calls at once; waiting calls start in policy order.

    ``await acquire(priority, flow, crit)`` returns at once while a slot is free (and
    nobody waits), else when the call's turn comes; every acquire must be followed by
    exactly one ``release()``. A caller cancelled while waiting gives its place up.

    Order of waiting calls (rule 19, SPEC §6.2), best first:

    - ``fifo``: higher ``priority`` first, then enqueue order;
    - ``program``: higher ``priority``, then the flow's level (attained service in
      multi-level queues, :func:`~cxpar.runtime.flows.level_of`), then flows in start
      order, then (within a flow) the longer estimated critical path ``crit``, then
      enqueue order. A flow's level only rises while its call waits, so a stale key is
      only ever too good: it is re-queued when popped (lazy re-keying).

    Aging (``aging_s`` > 0) bounds every wait: time is cut into windows of ``aging_s``
    and a call enqueued one window earlier ranks one priority level higher, so after
    waiting ``2·aging_s`` a call beats every call of its priority enqueued later, and
    low priority never starves. Within one window and priority the policy's order
    holds untouched (aging never undoes program order between calls of one window).
    """

    __slots__ = ("limit", "active", "_heap", "_seq", "_waiting", "aging_s", "policy",
                 "quantum_s", "granted")

    def __init__(self, limit: int, aging_s: float = 0.0, policy: str = "fifo",
                 quantum_s: float = DEFAULT_QUANTUM_S) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown schedule {policy!r} (known: {', '.join(POLICIES)})")
        self.limit = limit
        self.active = 0
        self._heap: list[tuple[float, int, int, float, int, _Waiter]] = []
        self._seq = 0
        self._waiting = 0
        self.aging_s = aging_s
        self.policy = policy
        self.quantum_s = quantum_s
        #: Slots handed out so far.
        self.granted = 0

    def _key(self, priority: float, flow: Flow | None, crit: float,
              ) -> tuple[float, int, int, float]:
        k0 = -priority
        if self.aging_s > 0:
            k0 += math.floor(_loop_time() / self.aging_s)
        if self.policy == "fifo" or flow is None:
            return (k0, 0, 0, 0.0) if self.policy == "fifo" else (k0, 0, 0, -crit)
        return (k0, level_of(flow.attained, self.quantum_s), flow.seq, -crit)

    async def acquire(self, priority: float = 0.0, flow: Flow | None = None,
                      crit: float = 0.0) -> bool:
        """Wait for a slot; True if the call had to queue."""
        if self.active < self.limit and not self._heap:
            self.active += 1
            self.granted += 1
            return False
        w = _Waiter(asyncio.get_running_loop().create_future(), flow)
        self._seq += 1
        self._waiting += 1
        heapq.heappush(self._heap, (*self._key(priority, flow, crit), self._seq, w))
        try:
            await w.fut
        except BaseException:
            if w.fut.done() and not w.fut.cancelled():  # granted, then cancelled
                self.release()
            else:
                w.fut.cancel()
                self._waiting -= 1
            raise
        return True

    def release(self) -> None:
        self.active -= 1
        self._drain()

    def _drain(self) -> None:
        heap = self._heap
        program = self.policy == "program"
        while heap and self.active < self.limit:
            entry = heapq.heappop(heap)
            w = entry[5]
            if w.fut.done():  # its caller gave up
                continue
            flow = w.flow
            if program and flow is not None:
                lvl = level_of(flow.attained, self.quantum_s)
                if lvl != entry[1]:  # the flow moved down a level while waiting
                    heapq.heappush(heap, (entry[0], lvl, *entry[2:]))
                    continue
            self.active += 1
            self.granted += 1
            self._waiting -= 1
            w.fut.set_result(None)

    @property
    def queued(self) -> int:
        """Calls waiting for a slot."""
        return self._waiting


class _Waiter:
    __slots__ = ("fut", "flow")

    def __init__(self, fut: asyncio.Future[None], flow: Flow | None) -> None:
        self.fut = fut
        self.flow = flow

    def __lt__(self, other: _Waiter) -> bool:  # never reached: keys end in a unique seq
        return False


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
