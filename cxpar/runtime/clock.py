"""Event loops for the ``real`` and ``virtual`` clocks (SPEC §6.2, §10 rule 2).

The virtual loop is an ordinary asyncio selector loop whose ``time()`` is virtual: when
nothing is ready, its selector polls real I/O without blocking (signals, thread wake-ups)
and then jumps virtual time to the earliest timer. ``asyncio.sleep``,
``asyncio.timeout`` and ``call_at`` work unchanged; a 30 s simulated run takes
milliseconds. Timers due at the same instant fire in the order they were set.
A real-time guard calls ``loop.on_stall`` once when virtual time has not advanced for
``guard_s`` real seconds while work keeps running (or nothing can ever happen).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import selectors
import time as _time
from collections.abc import Callable
from typing import Any

__all__ = ["VirtualEventLoop", "new_loop", "DEFAULT_GUARD_S"]

DEFAULT_GUARD_S = 20.0

_seq = itertools.count()


class _SeqTimerHandle(asyncio.TimerHandle):
    """A timer ordered by (when, creation order): same-instant timers fire FIFO."""

    __slots__ = ("_seq",)

    def __init__(self, when: float, callback: Callable[..., Any], args: Any,
                 loop: asyncio.AbstractEventLoop, context: Any = None) -> None:
        super().__init__(when, callback, args, loop, context)
        self._seq = next(_seq)

    def __lt__(self, other: Any) -> bool:
        when = self._when  # type: ignore[attr-defined]
        if when == other._when:
            return bool(self._seq < getattr(other, "_seq", 0))
        return bool(when < other._when)

    def __le__(self, other: Any) -> bool:
        return self == other or self < other

    def __gt__(self, other: Any) -> bool:
        return not self <= other

    def __ge__(self, other: Any) -> bool:
        return not self < other

    __hash__ = asyncio.TimerHandle.__hash__


class _VirtualSelector(selectors.BaseSelector):
    """Delegates registration to a real selector; ``select`` advances virtual time."""

    def __init__(self, real: selectors.BaseSelector) -> None:
        self._real = real
        self.loop: VirtualEventLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        assert loop is not None
        if timeout is None:
            # Nothing ready, no timer: only real I/O (Ctrl-C, threads) can wake us.
            if loop.holds:  # waiting for another process is not a stall
                loop._last_advance = _time.monotonic()
            left = loop.guard_s - (_time.monotonic() - loop._last_advance)
            events = self._real.select(max(0.0, min(left, 0.5)))
            if not events and left <= 0:
                loop._stalled()
            return events
        if timeout > 0 and loop.holds:
            # Something outside the loop must answer first (``hold``): wait for it in
            # real time, without moving virtual time on.
            loop._last_advance = _time.monotonic()
            return self._real.select(min(timeout, 0.05))
        events = self._real.select(0)
        if timeout > 0:
            sched = loop._scheduled  # type: ignore[attr-defined]
            if sched:
                when = sched[0]._when
                if when > loop._vtime:
                    loop._vtime = when
            loop._last_advance = _time.monotonic()
        else:
            loop._ticks += 1
            if loop._ticks & 0x3FF == 0 and (
                    _time.monotonic() - loop._last_advance > loop.guard_s):
                loop._stalled()
        return events


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """A deterministic discrete-event loop: ``time()`` starts at 0 and jumps between timers."""

    def __init__(self, guard_s: float = DEFAULT_GUARD_S) -> None:
        sel = _VirtualSelector(selectors.DefaultSelector())
        self._vtime = 0.0
        self._ticks = 0
        self._last_advance = _time.monotonic()
        self.guard_s = guard_s
        self.on_stall: Callable[[], None] | None = None
        self._stall_reported = False
        #: Waits on something outside the loop (another process) that must end before
        #: virtual time may move on (:meth:`hold`).
        self.holds = 0
        super().__init__(sel)
        sel.loop = self
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._vtime

    def hold(self) -> None:
        """Virtual time stands still until :meth:`release` (waiting for another
        process's answer, e.g. a journal commit in the driver): other timers wait too,
        so a run orders its events as if the answer were immediate."""
        self.holds += 1

    def release(self) -> None:
        self.holds -= 1

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any,  # type: ignore[override]
                context: Any = None) -> asyncio.TimerHandle:
        if when is None:
            raise TypeError("when cannot be None")
        self._check_closed()  # type: ignore[attr-defined]
        timer = _SeqTimerHandle(round(when, 9), callback, args, self, context)
        heapq.heappush(self._scheduled, timer)  # type: ignore[attr-defined]
        timer._scheduled = True  # type: ignore[attr-defined]
        return timer

    def _stalled(self) -> None:
        self._last_advance = _time.monotonic()
        if self.on_stall is not None and not self._stall_reported:
            self._stall_reported = True
            self.call_soon(self.on_stall)


def new_loop(kind: str = "virtual", *, guard_s: float = DEFAULT_GUARD_S) -> asyncio.AbstractEventLoop:
    """A fresh loop for ``kind`` ∈ {"virtual", "real"} (uvloop for real when importable)."""
    if kind == "virtual":
        return VirtualEventLoop(guard_s)
    if kind != "real":
        raise ValueError(f"unknown clock {kind!r} (expected 'virtual' or 'real')")
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop optional
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]
