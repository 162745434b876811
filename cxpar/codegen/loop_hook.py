"""The python backend's side of loop lifting: call a native loop, else run the Python one.

For a loop the llvm backend lifted (:mod:`cxpar.codegen.llvm.loops`), the python backend
generates, after the loop guard's start::

    if _L3 is not None and type(v_i) is float and type(g_h) is float:   # entry check
        _st = 0
        while True:
            _st, v_i, g_h = _L3(_st, v_i, g_h)       # runs up to CHUNK iterations
            if _st <= 0:
                break
            _g = _s.loop_ticks(_g, CHUNK, span)      # the loop guard, as in Python
        if _st:
            _s.fail(*((message, span), ...)[-1 - _st])   # `/ 0` at that span
    else:
        <the Python loop, unchanged>

``_L3`` is a closure variable of ``__cx_program__``, None unless the program was started
with native loops; the variables are written back after every call, so a runtime error
or a guard stop leaves them exactly as the python backend would.
"""

from __future__ import annotations

import ast as py
from collections.abc import Callable
from typing import Any

from cxpar.analysis.model import Binding

__all__ = ["NATIVE_PARAM", "native_loop"]

#: The parameter of ``__cx_program__`` that receives the native loops (or None).
NATIVE_PARAM = "__cx_native__"


def _name(ident: str, store: bool = False) -> py.Name:
    return py.Name(id=ident, ctx=py.Store() if store else py.Load())


def _attr(obj: str, name: str) -> py.Attribute:
    return py.Attribute(value=_name(obj), attr=name, ctx=py.Load())


def native_loop(code: Any, fn_name: str, guard: str, status: str,
                temps: list[str], load: Callable[[Binding], py.expr],
                store: Callable[[Binding], py.expr], sid: Callable[[Any], int],
                support: str, python_loop: list[py.stmt], chunk: int) -> py.If:
    """The statement that runs lifted loop ``code`` natively or ``python_loop``.

    ``load``/``store`` give a variable's Python read and assignment target; ``temps``
    names the loop's own variables (one per inner variable, in state order)."""
    loop = code.loop
    inner = iter(temps)
    state_names: dict[int, str] = {}
    for v in loop.state:
        if not v.outer:
            state_names[id(v.binding)] = next(inner)
    checks: list[py.expr] = [py.Compare(left=_name(fn_name), ops=[py.IsNot()],
                                        comparators=[py.Constant(value=None)])]
    for v in loop.params:
        want = "float" if v.type == "number" else "bool"
        checks.append(py.Compare(left=py.Call(func=_name("type"), args=[load(v.binding)],
                                              keywords=[]),
                                 ops=[py.Is()], comparators=[_name(want)]))

    def arg(v: Any) -> py.expr:
        return _name(state_names[id(v.binding)]) if not v.outer else load(v.binding)

    def target(v: Any) -> py.expr:
        return _name(state_names[id(v.binding)], True) if not v.outer else store(v.binding)

    init: list[py.stmt] = [py.Assign(targets=[_name(status, True)],
                                     value=py.Constant(value=0))]
    for v in loop.state:
        if not v.outer:
            init.append(py.Assign(targets=[_name(state_names[id(v.binding)], True)],
                                  value=py.Constant(value=0.0 if v.type == "number"
                                                    else False)))
    call = py.Assign(
        targets=[py.Tuple(elts=[_name(status, True)] + [target(v) for v in code.returned],
                          ctx=py.Store())],
        value=py.Call(func=_name(fn_name), args=[_name(status)] + [arg(v) for v in loop.state],
                      keywords=[]))
    stop = py.If(test=py.Compare(left=_name(status), ops=[py.LtE()],
                                 comparators=[py.Constant(value=0)]),
                 body=[py.Break()], orelse=[])
    tick = py.Assign(targets=[_name(guard, True)], value=py.Call(
        func=_attr(support, "loop_ticks"),
        args=[_name(guard), py.Constant(value=chunk), py.Constant(value=sid(loop.span))],
        keywords=[]))
    drive = py.While(test=py.Constant(value=True), body=[call, stop, tick], orelse=[])
    native: list[py.stmt] = [*init, drive]
    if code.errors:
        table = py.Tuple(elts=[py.Tuple(elts=[py.Constant(value=msg),
                                              py.Constant(value=sid(span))], ctx=py.Load())
                               for msg, span in code.errors], ctx=py.Load())
        pick = py.Subscript(value=table, slice=py.BinOp(
            left=py.UnaryOp(op=py.USub(), operand=py.Constant(value=1)), op=py.Sub(),
            right=_name(status)), ctx=py.Load())
        native.append(py.If(test=_name(status), body=[py.Expr(value=py.Call(
            func=_attr(support, "fail"), args=[py.Starred(value=pick, ctx=py.Load())],
            keywords=[]))], orelse=[]))
    test = checks[0] if len(checks) == 1 else py.BoolOp(op=py.And(), values=checks)
    return py.If(test=test, body=native, orelse=python_loop)
