"""Loop lifting, part 3: JIT the loops module and hand the generated Python its builtins.

Used by ``cxpar run --backend llvm`` and by standalone modules written by ``cxpar
compile`` (which embed the loops' IR): :func:`load_loops` JIT-compiles the IR (object
code cached on disk like the router's, :mod:`.jit`) and wraps each loop's
``cx_loop_K_py`` as a CPython builtin (:func:`.bridge.make_builtin`). It returns None
— and the generated code then runs every loop in Python, with the same output — when
llvmlite cannot load or JIT here, or when ``CXPAR_NATIVE_LOOPS=0``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["load_loops", "native_loops_enabled", "LoadedLoops"]

#: Engines and method definitions must outlive the builtins made from them.
_ALIVE: list[Any] = []


def native_loops_enabled() -> bool:
    """False when ``CXPAR_NATIVE_LOOPS=0`` (every loop then runs in Python)."""
    return os.environ.get("CXPAR_NATIVE_LOOPS", "1") != "0"


class LoadedLoops(list):  # type: ignore[type-arg]
    """The loops' builtins, in lifted-loop order, with JIT timings."""

    compile_s: float = 0.0
    cache_hit: bool = False


def load_loops(ir_text: str, symbols: Sequence[str], *,
               strict: bool = False) -> LoadedLoops | None:
    """One builtin per symbol (``cx_loop_K``), or None if native loops are unavailable
    (``strict``: raise instead, :class:`.jit.BackendUnavailable` if llvmlite cannot load)."""
    if not symbols or not native_loops_enabled():
        return None
    try:
        from .bridge import make_builtin
        from .jit import jit_compile, load_llvmlite

        load_llvmlite()
        jitted = jit_compile(ir_text)
        keep: list[Any] = []
        out = LoadedLoops(make_builtin(jitted, f"{sym}_py", sym, None, keep)
                          for sym in symbols)
    except Exception:  # noqa: BLE001 - any failure: the Python loops run instead
        if strict:
            raise
        return None
    _ALIVE.append((jitted, keep))
    out.compile_s = jitted.compile_s
    out.cache_hit = jitted.cache_hit
    return out


def bind(program: Callable[..., Any], loops: Sequence[Any] | None) -> Callable[[Any], Any]:
    """``program(rt)`` with its native loops (None: the Python loops)."""

    def factory(rt: Any) -> Any:
        return program(rt, loops)

    factory.__wrapped__ = program  # type: ignore[attr-defined]  # its __cx_paths__ too
    return factory
