"""Small helpers that generated code calls besides :mod:`cxpar.runtime.values`."""

from __future__ import annotations

import time
from typing import Any, NoReturn

from .errors import CxRuntimeError, Stopped


def fail(message: str, span: int) -> NoReturn:
    """Raise a CX runtime error at ``span`` (used where an expression cannot work)."""
    raise CxRuntimeError(message, span)


def entity_value(name: str) -> Any:
    """The value of an entity name in expression position: its name (never fails)."""
    return name


def builtin_value(name: str) -> Any:
    """A builtin function's name used as a value evaluates to its name (not callable)."""
    return name


def repl_globals(rt: Any, names: list[str]) -> dict[str, Any]:
    """The globals kept on ``rt`` across REPL entries, by CX name; declares ``names``."""
    ns: dict[str, Any] | None = getattr(rt, "repl_namespace", None)
    if ns is None:
        ns = rt.repl_namespace = {}
    for name in names:
        ns.setdefault(name, None)
    return ns


def set_global(ns: dict[str, Any], name: str, value: Any) -> Any:
    """``name = value`` in the REPL globals, as an expression."""
    ns[name] = value
    return value


#: The default of ``RunSettings.loop_limit_s`` (a loop with no runtime uses it).
LOOP_LIMIT_S = 20.0


class LoopGuard:
    """Iteration counter of one loop; see :func:`loop_tick`."""

    __slots__ = ("count", "started", "rt", "seen", "limit_s")

    def __init__(self, rt: Any = None) -> None:
        self.count = 0
        self.started = time.monotonic()
        self.rt = rt
        self.seen = rt.suspensions if rt is not None else 0
        self.limit_s = rt.settings.loop_limit_s if rt is not None else LOOP_LIMIT_S

    def check(self, span: int) -> None:
        """Stop the loop if the program is ending or the loop kept the event loop busy
        too long (time since the loop last reached a service call, ``await`` or ``new``)."""
        now = time.monotonic()
        rt = self.rt
        if rt is not None:
            if rt.should_stop():
                raise Stopped
            if rt.suspensions != self.seen:
                self.seen = rt.suspensions
                self.started = now
                return
        if now - self.started > self.limit_s:
            raise CxRuntimeError(
                f"loop ran for more than {self.limit_s:g} s without finishing (set "
                "`loop_limit_s` in [run] of cxpar.toml or CXPAR_LOOP_LIMIT_S to change the "
                "limit)", span)


def loop_start(rt: Any = None) -> LoopGuard:
    """Start guarding a loop of the program run by ``rt`` (any loop form)."""
    return LoopGuard(rt)


def loop_tick(guard: LoopGuard, span: int) -> LoopGuard:
    """Count one iteration; every 64th checks the clock (:meth:`LoopGuard.check`).

    A loop that never reaches a service call blocks the event loop, so neither
    ``--timeout``, Ctrl-C nor the virtual clock's guard could stop it otherwise: the
    loop ends when the program's real-clock deadline passes, on the first Ctrl-C, and
    (as a CX runtime error at the loop) after ``RunSettings.loop_limit_s`` real seconds.
    """
    guard.count += 1
    if not guard.count & 0x3F:
        guard.check(span)
    return guard


def loop_ticks(guard: LoopGuard, n: int, span: int) -> LoopGuard:
    """Count ``n`` iterations at once (a native loop returning to Python every ``n``,
    a multiple of 65 536); the same check as :func:`loop_tick`."""
    guard.count += n
    guard.check(span)
    return guard
