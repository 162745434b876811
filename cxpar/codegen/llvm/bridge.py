"""The bridge: a runtime router whose routing is the JIT'd ``cx_subscribers`` builtin.

Measured in ``bench/llvm_dispatch.py`` (docs/performance.md, "LLVM backend"): a ctypes
call costs several times a dict lookup, while a JIT'd ``METH_FASTCALL`` function wrapped
as a CPython builtin (``PyCFunction_NewEx``) costs about as much as calling ``len``. So
the hot path, ``bus.subscribers(name)`` (every ``emit``, every branch key at fan-out,
every ``handlers`` item), is that builtin; cold paths (filling a table slot after a
subscription) use Python and ctypes.

:class:`NativeBus` is a :class:`cxpar.runtime.bus.Bus`: subscriptions are stored the same
way, so ``has_subscribers``/``names`` and the generic path are the Python code, and a
name or pattern the compiler never saw (a plug-in stem, a REPL entry) routes exactly as
the python backend routes it.
"""

from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any

from cxpar.runtime.bus import Bus, Handler, Sub

from .ir import DispatchTables, generate_ir, tables_for
from .jit import Jitted, jit_compile

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

__all__ = ["NativeRouter", "NativeBus", "build_router"]

_METH_FASTCALL = 0x0080


class _MethodDef(ctypes.Structure):
    _fields_ = [("ml_name", ctypes.c_char_p), ("ml_meth", ctypes.c_void_p),
                ("ml_flags", ctypes.c_int), ("ml_doc", ctypes.c_char_p)]


_new_cfunction = ctypes.pythonapi.PyCFunction_NewEx
_new_cfunction.argtypes = [ctypes.c_void_p, ctypes.py_object, ctypes.py_object]
_new_cfunction.restype = ctypes.py_object


def make_builtin(jitted: Jitted, symbol: str, name: str, self_obj: Any,
                 keep: list[Any]) -> Any:
    """Wrap a JIT'd ``PyObject *f(PyObject *self, PyObject *const *args, Py_ssize_t n)``
    as a builtin function object bound to ``self_obj`` (``keep`` keeps the def alive)."""
    mdef = _MethodDef(name.encode(), jitted.address(symbol), _METH_FASTCALL, None)
    keep.append(mdef)
    return _new_cfunction(ctypes.addressof(mdef), self_obj, None)


class NativeRouter:
    """One program's compiled dispatch layer; calling it makes a fresh bus for one run."""

    def __init__(self, tables: DispatchTables, jitted: Jitted, ir_text: str) -> None:
        self.tables = tables
        self.jitted = jitted
        self.ir = ir_text
        self.event_ids = tables.event_ids()
        self.pattern_ids = tables.pattern_ids()
        self._match = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32,
                                       ctypes.POINTER(ctypes.c_int32))(
            jitted.address("cx_match"))
        self._match_buf = (ctypes.c_int32 * max(1, len(tables.patterns)))()
        self._keep: list[Any] = []

    def match(self, event_id: int) -> list[int]:
        """Pattern ids matching an interned event (the static table, via ctypes)."""
        n = self._match(event_id, self._match_buf)
        return list(self._match_buf[:n]) if n > 0 else []

    def __call__(self) -> NativeBus:
        return NativeBus(self)


class NativeBus(Bus):
    """A :class:`Bus` whose ``subscribers`` is the JIT'd builtin over a native table."""

    __slots__ = ("subscribers", "_router", "_n", "_table", "_table_addr", "_state",
                 "_held", "_filled", "_by_pat", "_dynamic", "_fallback", "_keep")

    def __init__(self, router: NativeRouter) -> None:
        super().__init__()
        self._router = router
        n = len(router.tables.events)
        self._n = n
        self._table = (ctypes.c_void_p * max(1, n))()
        self._table_addr = ctypes.addressof(self._table)
        self._held: list[Any] = [None] * n
        self._filled = False
        self._by_pat: list[list[tuple[int, Sub]]] = [[] for _ in router.tables.patterns]
        self._dynamic = False
        self._fallback = self._fill
        self._state = (ctypes.c_void_p * 3)(self._table_addr, id(self._fallback), n)
        self._keep: list[Any] = []
        self.subscribers = make_builtin(  # type: ignore[method-assign]
            router.jitted, "cx_subscribers", "subscribers",
            ctypes.addressof(self._state), self._keep)

    def subscribe(self, pattern: str, fn: Handler, inst: Any = None) -> None:
        Bus.subscribe(self, pattern, fn, inst)
        pid = self._router.pattern_ids.get(pattern)
        if pid is None:
            self._dynamic = True
        else:
            self._by_pat[pid].append((self._seq, (fn, inst)))
        if self._filled:
            ctypes.memset(self._table_addr, 0, ctypes.sizeof(self._table))
            self._held = [None] * self._n
            self._filled = False

    def _fill(self, name: Any) -> tuple[Sub, ...]:
        """The builtin's slow path: resolve ``name`` and cache it in the native table."""
        eid = self._router.event_ids.get(name) if type(name) is str else None
        if eid is None or self._dynamic:
            subs = Bus.subscribers(self, name)
        else:
            pids = self._router.match(eid)
            found: list[tuple[int, Sub]] = []
            for pid in pids:
                found.extend(self._by_pat[pid])
            if len(pids) > 1:
                found.sort(key=lambda e: e[0])
            subs = tuple(sub for _, sub in found)
        if eid is not None:
            self._held[eid] = subs
            self._table[eid] = id(subs)
            self._filled = True
        return subs


def build_router(comp: Compilation) -> NativeRouter:
    """IR for ``comp``'s dispatch layer, JIT-compiled (or loaded from the cache)."""
    tables = tables_for(comp.info)
    ir_text = generate_ir(comp.info, comp.source.name, tables)
    return NativeRouter(tables, jit_compile(ir_text), ir_text)
