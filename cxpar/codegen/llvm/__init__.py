"""The llvm backend: the dispatch layer as LLVM IR, JIT-compiled with llvmlite.

Only the dispatch layer is native (SPEC §6.1, STYLE §5): handlers, realize and the top
level are the python backend's code. Modules:

- :mod:`.ir` — IR text from an analysed program (interned event ids, the static
  event → pattern match table with ``any`` wildcards resolved, per-call branch slot
  tables, fan-out/join/slot helpers, and the ``cx_subscribers`` builtin);
- :mod:`.jit` — llvmlite initialisation, optimisation, MCJIT and the object cache;
- :mod:`.bridge` — :class:`NativeBus`, the runtime router backed by the JIT'd table,
  exposed to Python as a CPython builtin (METH_FASTCALL), not through ctypes;
- :mod:`.tiered` — the router ``run --backend llvm`` uses: Python routing that
  switches to the JIT'd one once a process has routed enough events to pay for it.

Nothing here is imported by :mod:`cxpar.runtime`; ``cxpar run --backend llvm`` builds a
router and passes it in. llvmlite (and ctypes) are imported only when something is
JIT-compiled (:func:`.jit.load_llvmlite`), and so are this package's IR generators:
a program without lifted loops starts as fast as with the python backend.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DispatchTables", "generate_ir", "tables_for"]


def __getattr__(name: str) -> Any:
    if name in __all__:  # imported on first use: most runs never generate dispatch IR
        from . import ir

        return getattr(ir, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
