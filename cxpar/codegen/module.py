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


def compile_program(comp: Compilation, *, repl: bool = False) -> Compiled:
    """Generate, compile (filename = the CX path, so positions are CX lines) and load."""
    module, spans = generate(comp, repl=repl)
    code: CodeType = compile(module, comp.source.name, "exec")
    namespace: dict[str, Any] = {"__name__": "__cx__"}
    exec(code, namespace)  # noqa: S102 - our own generated code
    return Compiled(namespace["__cx_program__"], spans, {comp.source.name: comp.source.text},
                    module)


def python_source(comp: Compilation) -> str:
    """A readable standalone module: runs with ``python out.py`` given ``cxpar.runtime``."""
    module, _spans = generate(comp)
    head = (f'"""Compiled by cxpar from {comp.source.name}.\n\n'
            "Run it with `python this_file.py [--clock real|virtual] [--seed N]`; it needs only\n"
            'the installed `cxpar.runtime`.\n"""\n')
    body = py.unparse(module)
    source = f"__cx_source__ = {comp.source.text!r}\n"
    return head + body + "\n" + source + _MAIN
