"""Tiered routing: Python routing first, the JIT'd router once it pays for itself.

Native routing (:mod:`.bridge`) saves ≈ 80 ns per routing (a JIT'd builtin instead of
``Bus.subscribers``, docs/performance.md "LLVM backend"), but getting it costs ≈ 45 ms
per process (importing and initialising llvmlite, loading the router's object code from
the cache; 50–160 ms more when it must be generated). A program that routes fewer than
about half a million events can only lose, and most programs route a few hundred. So
``run --backend llvm`` routes with the python backend's :class:`~cxpar.runtime.bus.Bus`
and counts routings; once a process has routed :func:`routing_after` events (the
break-even point: the time Python routing has cost extra then equals the JIT's cost) it
JIT-compiles the router and every bus switches to it, keeping its subscriptions and
their order. Routing results are the same either way (the differential tests run every
example with the native router from the start, and with a switch in mid-run).

``CXPAR_NATIVE_ROUTING_AFTER=N`` sets the threshold (``0``: JIT the router before the
program starts, as before this module).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from cxpar.runtime.bus import Bus, Handler, Router, Sub

from .jit import BackendUnavailable

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

    from .bridge import NativeBus, NativeRouter

__all__ = ["DEFAULT_ROUTING_AFTER", "TieredBus", "TieredRouter", "routing_after"]

#: Routings after which the router is JIT-compiled: ≈ 45 ms of JIT / ≈ 80 ns saved per
#: routing (docs/decisions.md, "Tiered routing").
DEFAULT_ROUTING_AFTER = 1 << 19


def routing_after() -> int:
    """The threshold: ``CXPAR_NATIVE_ROUTING_AFTER`` if a non-negative integer, else the
    default."""
    value = os.environ.get("CXPAR_NATIVE_ROUTING_AFTER", "").strip()
    return int(value) if value.isdigit() else DEFAULT_ROUTING_AFTER


class TieredRouter:
    """One program's router factory (``rt.use_router(router())`` per run): a
    :class:`TieredBus` until the process has routed ``after`` events, then the JIT'd
    :class:`~.bridge.NativeRouter`'s bus."""

    def __init__(self, comp: Compilation, after: int) -> None:
        self._comp = comp
        #: Routings left before the switch (shared by every run of the program).
        self.left = after
        self.native: NativeRouter | None = None
        #: Why the router could not be JIT-compiled (routing then stays in Python).
        self.failed: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Router:
        native = self.native
        return native() if native is not None else TieredBus(self)

    def tier_up(self, strict: bool = False) -> NativeRouter | None:
        """JIT the router (once); None if it cannot be (``strict``: raise
        :class:`BackendUnavailable`)."""
        with self._lock:
            if self.native is None and (self.failed is None or strict):
                from .backend import prepare

                try:
                    self.native = prepare(self._comp)
                except BackendUnavailable as exc:
                    self.failed = str(exc)
                    if strict:
                        raise
            return self.native


class TieredBus(Bus):
    """A :class:`Bus` that counts routings and then routes through a native bus.

    ``subscribers`` is an instance attribute (as in :class:`~.bridge.NativeBus`): first
    the counting Python routing, after the switch the native bus's builtin. Every
    subscription is kept here too, so a caller holding the old bound method, or
    ``has_subscribers``/``names``, sees the same state.
    """

    __slots__ = ("subscribers", "_router", "_native")

    def __init__(self, router: TieredRouter) -> None:
        super().__init__()
        self._router = router
        self._native: NativeBus | None = None
        self.subscribers = self._counted  # type: ignore[method-assign]

    def _counted(self, name: str) -> tuple[Sub, ...]:
        router = self._router
        router.left -= 1
        if router.left < 0:
            self._switch()
        subs = self._cache.get(name)  # Bus.subscribers' fast path, inlined
        return subs if subs is not None else Bus.subscribers(self, name)

    def _switch(self) -> None:
        """Route natively from now on (or, if the router cannot be JIT-compiled, stop
        counting): the native bus gets every subscription, in subscription order."""
        native = self._router.tier_up()
        if native is None:
            self.subscribers = self._python  # type: ignore[method-assign]
            return
        bus = native()
        subs: list[tuple[int, str, Sub]] = [
            (seq, pattern, sub) for pattern, entries in self._exact.items()
            for seq, sub in entries]
        subs.extend((seq, ".".join(parts), sub) for parts, seq, sub in self._wild)
        for _seq, pattern, (fn, inst) in sorted(subs, key=lambda e: e[0]):
            bus.subscribe(pattern, fn, inst)
        self._native = bus
        self.subscribers = bus.subscribers  # type: ignore[method-assign]

    def _python(self, name: str) -> tuple[Sub, ...]:
        return Bus.subscribers(self, name)

    def subscribe(self, pattern: str, fn: Handler, inst: Any = None) -> None:
        Bus.subscribe(self, pattern, fn, inst)
        if self._native is not None:
            self._native.subscribe(pattern, fn, inst)

    @property
    def native(self) -> bool:
        """Whether this bus routes through the JIT'd router now."""
        return self._native is not None
