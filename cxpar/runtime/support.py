"""Small helpers that generated code calls besides :mod:`cxpar.runtime.values`."""

from __future__ import annotations

import os
import time
from typing import Any, NoReturn

from .errors import CxRuntimeError


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


def _loop_limit_s() -> float:
    try:
        return float(os.environ.get("CXPAR_LOOP_LIMIT_S", "20"))
    except ValueError:
        return 20.0


LOOP_LIMIT_S = _loop_limit_s()


class LoopGuard:
    """Iteration counter of one loop; see :func:`loop_tick`."""

    __slots__ = ("count", "started")

    def __init__(self) -> None:
        self.count = 0
        self.started = time.monotonic()


def loop_start() -> LoopGuard:
    """Start guarding a `while`/`for(;;)` loop."""
    return LoopGuard()


def loop_tick(guard: LoopGuard, span: int) -> LoopGuard:
    """Count one iteration; a loop that runs LOOP_LIMIT_S real seconds is an error.

    A loop that never reaches a service call blocks the event loop, so neither
    ``--timeout`` nor the virtual clock's guard could stop it otherwise.
    """
    guard.count += 1
    if guard.count & 0xFFFF == 0 and time.monotonic() - guard.started > LOOP_LIMIT_S:
        _loop_too_long(span)
    return guard


def loop_ticks(guard: LoopGuard, n: int, span: int) -> LoopGuard:
    """Count ``n`` iterations at once (a native loop returning to Python every ``n``,
    a multiple of 65 536); the same check as :func:`loop_tick`."""
    guard.count += n
    if time.monotonic() - guard.started > LOOP_LIMIT_S:
        _loop_too_long(span)
    return guard


def _loop_too_long(span: int) -> NoReturn:
    raise CxRuntimeError(
        f"loop ran for more than {LOOP_LIMIT_S:g} s without finishing "
        "(set CXPAR_LOOP_LIMIT_S to change the limit)", span)
