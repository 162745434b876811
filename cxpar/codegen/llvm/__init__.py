"""The llvm backend: the dispatch layer as LLVM IR, JIT-compiled with llvmlite.

Only the dispatch layer is native (SPEC §6.1, STYLE §5): handlers, realize and the top
level are the python backend's code. Modules:

- :mod:`.ir` — IR text from an analysed program (interned event ids, the static
  event → pattern match table with ``any`` wildcards resolved, per-call branch slot
  tables, fan-out/join/slot helpers, and the ``cx_subscribers`` builtin);
- :mod:`.jit` — llvmlite initialisation, optimisation, MCJIT and the object cache;
- :mod:`.bridge` — :class:`NativeBus`, the runtime router backed by the JIT'd table,
  exposed to Python as a CPython builtin (METH_FASTCALL), not through ctypes.

Nothing here is imported by :mod:`cxpar.runtime`; ``cxpar run --backend llvm`` builds a
router and passes it in. llvmlite is imported lazily (:func:`.jit.load_llvmlite`).
"""

from __future__ import annotations

from .ir import DispatchTables, generate_ir, tables_for

__all__ = ["DispatchTables", "generate_ir", "tables_for"]
