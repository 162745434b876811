"""Compile an analysed program to a code object, or to a standalone ``out.py``."""

from __future__ import annotations

import ast as py
from dataclasses import dataclass
from types import CodeType
from typing import Any

from cxpar.analysis.pipeline import Compilation
from cxpar.codegen.python import generate

_MAIN = '''
if __name__ == "__main__":
    import sys
    from cxpar.runtime.standalone import main
    sys.exit(main(__cx_program__, __cx_spans__, {__cx_file__: __cx_source__}))
'''


@dataclass
class Compiled:
    """A compiled program: ``program(rt)`` returns the top level as a coroutine function."""

    program: Any
    spans: list[tuple[str, int, int, int, int]]
    sources: dict[str, str]
    module: py.Module


def with_estimates(module: py.Module, comp: Compilation) -> py.Module:
    """Append ``__cx_program__.__cx_paths__ = {(line, col): path, ...}``: each call site's
    critical path (:func:`cxpar.analysis.schedule.call_paths`), which the runtime uses
    to order one program's waiting calls under ``--max-concurrency``."""
    from cxpar.analysis.schedule import call_paths

    paths = call_paths(comp)
    table = py.parse(f"__cx_program__.__cx_paths__ = {dict(sorted(paths.items()))!r}")
    module.body.extend(table.body)
    return module


def compile_program(comp: Compilation, *, repl: bool = False, loops: Any = None) -> Compiled:
    """Generate, compile (filename = the CX path, so positions are CX lines) and load.

    ``loops`` (the llvm backend's :class:`~cxpar.codegen.llvm.backend.LiftedLoops`):
    the program then takes its native loops as a second argument."""
    module, spans = generate(comp, repl=repl, loops=loops)
    if not repl:
        with_estimates(module, comp)
    code: CodeType = compile(module, comp.source.name, "exec")
    namespace: dict[str, Any] = {"__name__": "__cx__"}
    exec(code, namespace)  # noqa: S102 - our own generated code
    return Compiled(namespace["__cx_program__"], spans, {comp.source.name: comp.source.text},
                    module)


_MAIN_NATIVE = '''
if __name__ == "__main__":
    import sys
    from cxpar.runtime.standalone import main
    try:  # the lifted loops run natively when llvmlite can JIT them here
        from cxpar.codegen.llvm.native import bind, load_loops
        __cx_factory__ = bind(__cx_program__, load_loops(__cx_loops_ir__, __cx_loop_symbols__))
    except ImportError:
        __cx_factory__ = __cx_program__
    sys.exit(main(__cx_factory__, __cx_spans__, {__cx_file__: __cx_source__}))
'''


def python_source(comp: Compilation) -> str:
    """A readable standalone module: runs with ``python out.py`` given ``cxpar.runtime``.

    Loops the llvm backend can lift get a native path too; the module carries their IR
    and JITs it at start when llvmlite is available (else its Python loops run)."""
    from cxpar.codegen.llvm.backend import lift_loops
    from cxpar.codegen.llvm.native import native_loops_enabled

    lifted = lift_loops(comp) if native_loops_enabled() else None
    if lifted is not None and not lifted.codes:
        lifted = None
    module, _spans = generate(comp, loops=lifted)
    with_estimates(module, comp)
    # User text (the file name, the source, the loops' IR) enters only as string
    # constants, which `ast.unparse` writes as escaped literals.
    doc = (f"Compiled by cxpar from {comp.source.name}.\n\n"
           "Run it with `python this_file.py [--clock real|virtual] [--seed N]`; it needs "
           "only\nthe installed `cxpar.runtime`.\n")
    module.body.insert(0, py.Expr(value=py.Constant(value=doc)))
    tables: dict[str, Any] = {"__cx_source__": comp.source.text}
    if lifted is not None:
        tables.update(__cx_loops_ir__=lifted.ir(), __cx_loop_symbols__=lifted.symbols)
    for name, value in tables.items():
        node: py.expr = py.Constant(value=value) if isinstance(value, str) else py.List(
            elts=[py.Constant(value=x) for x in value], ctx=py.Load())
        module.body.append(py.Assign(targets=[py.Name(id=name, ctx=py.Store())], value=node))
    py.fix_missing_locations(module)
    return py.unparse(module) + "\n" + (_MAIN if lifted is None else _MAIN_NATIVE)
