"""Helpers: compile CX source in-process and run it on the virtual clock (sim provider)."""

from __future__ import annotations

import io
import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

import pytest

from cxpar.codegen.module import compile_program
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile


@dataclass
class Result:
    code: int
    out: str
    err: str
    diagnostics: list[Any] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self, i: int) -> Any:
        """Line ``i`` of stdout parsed as JSON (what `print(obj)` wrote)."""
        return json.loads(self.lines[i])


class CompileFailed(AssertionError):
    pass


def run_cx(text: str, name: str = "test.cx", **kw: Any) -> Result:
    """Compile ``text`` and run it; ``kw`` go to ``run_factory`` (seed, fail_rate, ...)."""
    text = textwrap.dedent(text)
    fe = front_end_source(SourceFile(name, text))
    if fe.has_errors or fe.compilation is None:
        raise CompileFailed("\n".join(f"{d.code} {d.message} {d.span}" for d in fe.diagnostics))
    compiled = compile_program(fe.compilation)
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("clock", "virtual")
    kw.setdefault("guard_s", 5.0)
    settings = RunSettings(**{k: kw.pop(k) for k in list(kw)  # provider: the object
                              if k in RunSettings.__dataclass_fields__ and k != "provider"})
    code = run_factory(compiled.program, compiled.spans, compiled.sources, settings,
                       stdout=out, stderr=err, **kw)
    return Result(code, out.getvalue(), err.getvalue(), list(fe.diagnostics))


def diagnostics(text: str) -> list[Any]:
    return list(front_end_source(SourceFile("test.cx", textwrap.dedent(text))).diagnostics)


@pytest.fixture
def cx() -> Any:
    return run_cx
