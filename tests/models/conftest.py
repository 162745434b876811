"""Helpers: compile CX text and run it (the sim on the virtual clock by default)."""

from __future__ import annotations

import io
import textwrap
from typing import Any

from cxpar.codegen.module import compile_program
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile
from tests.support.result import Result


def diagnostics(text: str) -> list[Any]:
    fe = front_end_source(SourceFile("t.cx", textwrap.dedent(text)))
    return list(fe.diagnostics)


def run_cx(text: str, provider: Any = None, **kw: Any) -> Result:
    """Compile ``text`` and run it; ``kw`` are RunSettings fields (virtual clock)."""
    fe = front_end_source(SourceFile("t.cx", textwrap.dedent(text)))
    errors = [d for d in fe.diagnostics if d.is_error]
    assert not errors and fe.compilation is not None, errors
    compiled = compile_program(fe.compilation)
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("clock", "virtual")
    code = run_factory(compiled.program, compiled.spans, compiled.sources, RunSettings(**kw),
                       provider=provider, stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())
