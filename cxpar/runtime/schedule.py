"""The global limit on provider calls and the order of waiting calls (rules 19, 45, §6.2).

:class:`Limiter` hands out slots; when none is free a call waits in a heap ordered by
the run's policy (``--schedule``, ``[limits] schedule``):

- ``fifo``: higher ``priority`` first, then the order the calls started waiting;
- ``program`` (default): higher ``priority``; then Autellix's PLAS over *flows* (the
  programs: batch streams, or the units of work of a single run, see :mod:`.flows`):
  the flow's level — its attained service in multi-level queues whose first quantum is
  :data:`QUANTUM_CALLS` average calls or :data:`QUANTUM_FLOWS` average finished flows,
  whichever is more, doubling per level — then flows in start order
  (first come, first served); then, within a flow, the call heading the longer
  critical path (the graph's static estimate of the path, its length recomputed from
  the latencies observed so far); then waiting order.

Aging (``aging_s``) bounds every wait without undoing program order: time is cut
into windows of ``aging_s``; a call that started waiting one window earlier ranks one
priority level higher. After ``2·aging_s`` a call is ahead of every later call of its
priority, and low priority never starves; calls that start waiting in the same window
keep the policy's order.

The measurements behind these choices: ``bench/schedsim.py`` (a discrete-event model
of the candidates) and ``bench/schedule.py`` (the runtime), in docs/performance.md.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Sequence

from .flows import Flow, level_of

__all__ = ["Limiter", "POLICIES", "QUANTUM_CALLS", "QUANTUM_FLOWS", "CallPath"]

#: ``--schedule`` values: the order in which waiting provider calls get a slot.
POLICIES = ("program", "fifo")

#: A flow's first level lasts this many average calls' worth of attained service …
QUANTUM_CALLS = 16
#: … or this many average finished flows' worth, if that is more.
QUANTUM_FLOWS = 4

#: Event-loop steps a freed slot waits (at most) for its program's next call.
ANTICIPATION_STEPS = 16

#: One call site's critical path: ``(service, calls on the path, their static ms)``
#: (:func:`cxpar.analysis.schedule.call_paths`).
CallPath = Sequence[tuple[str, int, float]]


class Limiter:
    """At most ``limit`` provider calls at once; waiting calls start in policy order.

    ``await acquire(priority, flow, path, service)`` returns at once while a slot is
    free (and nobody waits), else when the call's turn comes (True: it waited). Every
    acquire is followed by exactly one ``release(service, served_s)``; ``served_s`` (the
    call's time on the provider) feeds the latency estimates. A caller cancelled while
    waiting gives its place up.
    """

    __slots__ = ("limit", "active", "_heap", "_seq", "_waiting", "aging_s", "policy",
                 "granted", "_lat", "_served_n", "_served_s", "_pending", "_drains",
                 "_flows_n", "_flows_s")

    def __init__(self, limit: int, aging_s: float = 0.0, policy: str = "fifo") -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown schedule {policy!r} (known: {', '.join(POLICIES)})")
        self.limit = limit
        self.active = 0
        self._heap: list[tuple[float, int, int, float, int, _Waiter]] = []
        self._seq = 0
        self._waiting = 0
        self.aging_s = aging_s
        self.policy = policy
        #: Slots handed out so far.
        self.granted = 0
        self._lat: dict[str, list[float]] = {}  # service → [calls, seconds]
        self._served_n = 0
        self._served_s = 0.0
        self._pending = False  # a deferred drain is scheduled
        self._drains = 0
        self._flows_n = 0  # finished flows and their attained service
        self._flows_s = 0.0

    # ---------------------------------------------------------------- estimates
    @property
    def quantum_s(self) -> float:
        """Attained service that ends a flow's first level: :data:`QUANTUM_CALLS` average
        calls, or :data:`QUANTUM_FLOWS` average finished flows if that is more (only
        flows far longer than the usual one move down); 0 (one level) before any call
        finished."""
        n = self._served_n
        q = QUANTUM_CALLS * self._served_s / n if n else 0.0
        if self._flows_n:
            q = max(q, QUANTUM_FLOWS * self._flows_s / self._flows_n)
        return q

    def flow_done(self, flow: Flow) -> None:
        """``flow`` (a batch stream) ended: its attained service calibrates the levels."""
        if flow.attained > 0:
            self._flows_n += 1
            self._flows_s += flow.attained

    def latency_s(self, service: str, default_s: float) -> float:
        """Mean observed provider time of ``service`` (``default_s`` before any)."""
        lat = self._lat.get(service)
        return lat[1] / lat[0] if lat else default_s

    def critical_s(self, path: CallPath | None) -> float:
        """Length of a critical path with the latencies observed so far."""
        if not path:
            return 0.0
        total = 0.0
        for service, calls, static_ms in path:
            lat = self._lat.get(service)
            total += calls * lat[1] / lat[0] if lat else static_ms / 1000
        return total

    # ---------------------------------------------------------------- slots
    def _key(self, priority: float, flow: Flow | None, path: CallPath | None,
             ) -> tuple[float, int, int, float]:
        k0 = -priority
        if self.aging_s > 0:
            k0 += math.floor(_loop_time() / self.aging_s)
        if self.policy == "fifo":
            return (k0, 0, 0, 0.0)
        crit = -self.critical_s(path)
        if flow is None:
            return (k0, 0, 0, crit)
        return (k0, level_of(flow.attained, self.quantum_s), flow.seq, crit)

    async def acquire(self, priority: float = 0.0, flow: Flow | None = None,
                      path: CallPath | None = None) -> bool:
        """Wait for a slot; True if the call had to queue.

        Under ``program`` a free slot is not taken at once either: calls issued at the
        same instant (a fan-out, streams that start together) are all in the queue
        before the slot goes to the best of them (see :meth:`_defer`)."""
        if self.active < self.limit and not self._heap and self.policy == "fifo":
            self.active += 1
            self.granted += 1
            return False
        w = _Waiter(asyncio.get_running_loop().create_future(), flow)
        self._seq += 1
        self._waiting += 1
        heapq.heappush(self._heap, (*self._key(priority, flow, path), self._seq, w))
        if self.active < self.limit:
            w.drain = self._drains + 1  # granted in that drain = it never really waited
            self._defer()
        try:
            await w.fut
        except BaseException:
            if w.fut.done() and not w.fut.cancelled():  # granted, then cancelled
                self.release()
            else:
                w.fut.cancel()
                self._waiting -= 1
            raise
        return w.drain != w.granted_in

    def release(self, service: str | None = None, served_s: float = 0.0) -> None:
        """Give a slot back; ``served_s`` > 0: the call's provider time (statistics)."""
        if service is not None and served_s > 0:
            lat = self._lat.get(service)
            if lat is None:
                self._lat[service] = [1.0, served_s]
            else:
                lat[0] += 1
                lat[1] += served_s
            self._served_n += 1
            self._served_s += served_s
        self.active -= 1
        if not self._heap:
            return
        if self.policy == "program":
            self._defer()
        else:
            self._drain()

    def _defer(self) -> None:
        """Drain once the work this release set off at this instant has run (anticipation):
        the program whose call just ended usually issues its next call a few event-loop
        steps later, and must not lose the slot to a call of a later program meanwhile."""
        if not self._pending:
            self._pending = True
            asyncio.get_running_loop().call_soon(self._tick, ANTICIPATION_STEPS)

    def _tick(self, steps: int) -> None:
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)
        if steps > 0 and (ready is None or len(ready)):  # uvloop: always the full steps
            loop.call_soon(self._tick, steps - 1)
            return
        self._pending = False
        self._drain()

    def _drain(self) -> None:
        self._drains += 1
        heap = self._heap
        program = self.policy == "program"
        quantum = self.quantum_s
        while heap and self.active < self.limit:
            entry = heapq.heappop(heap)
            w = entry[5]
            if w.fut.done():  # its caller gave up
                continue
            flow = w.flow
            if program and flow is not None:
                lvl = level_of(flow.attained, quantum)
                if lvl != entry[1]:  # the flow changed level while this call waited
                    heapq.heappush(heap, (entry[0], lvl, *entry[2:]))
                    continue
            self.active += 1
            self.granted += 1
            self._waiting -= 1
            w.granted_in = self._drains
            w.fut.set_result(None)

    @property
    def queued(self) -> int:
        """Calls waiting for a slot."""
        return self._waiting

    @property
    def demand(self) -> int:
        """Calls holding or waiting for a slot now."""
        return self.active + self._waiting

    def resize(self, limit: int) -> None:
        """A new limit: more slots go to waiting calls now; fewer take effect as the
        calls holding them end (none is cut short)."""
        grew = limit > self.limit
        self.limit = limit
        if grew and self._heap:
            self._drain()


class _Waiter:
    __slots__ = ("fut", "flow", "drain", "granted_in")

    def __init__(self, fut: asyncio.Future[None], flow: Flow | None) -> None:
        self.fut = fut
        self.flow = flow
        self.drain = -1       # the drain that will see it while a slot is free
        self.granted_in = 0   # the drain that granted it

    def __lt__(self, other: _Waiter) -> bool:  # never reached: keys end in a unique seq
        return False


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return 0.0
