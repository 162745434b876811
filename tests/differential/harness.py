"""Run one program in-process under a backend and record what it did.

A :class:`Trace` holds stdout, stderr, the exit code, every emit (name and payload as
JSON, in emission order), every handler start (its label, in start order) and every
service call's ``_errors`` (in completion order). Two backends are equivalent on a
program when their traces are equal.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cxpar.codegen.llvm import backend as llvm_backend
from cxpar.codegen.module import compile_program
from cxpar.driver import FrontEnd, front_end, front_end_source
from cxpar.runtime import scheduler
from cxpar.runtime import values as V
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))
#: The examples' goldens (``cxpar test examples/``): NAME.out, NAME.code (absent: 0).
GOLDEN = ROOT / "examples"


def single_run_golden(path: Path) -> tuple[str, int] | None:
    """``(stdout, exit code)`` of a plain single run of example ``path``; None when its
    golden is for something else (a batch over NAME.jsonl, a replay, extra options)."""
    if any(path.with_suffix(ext).exists() for ext in (".jsonl", ".journal", ".args")):
        return None
    out = path.with_suffix(".out")
    if not out.exists():
        return None
    code = path.with_suffix(".code")
    return (out.read_text(encoding="utf-8"),
            int(code.read_text(encoding="utf-8")) if code.exists() else 0)


@dataclass
class Trace:
    out: str = ""
    err: str = ""
    code: int = -1
    emits: list[tuple[str, str]] = field(default_factory=list)
    starts: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    #: The llvm backend's router (None under the python backend).
    router: Any = None


def analyse_file(path: Path) -> FrontEnd:
    fe = front_end(path, path.relative_to(ROOT).as_posix())
    assert fe.compilation is not None and not fe.has_errors, fe.diagnostics
    return fe


def analyse_text(text: str, name: str = "gen.cx") -> FrontEnd:
    fe = front_end_source(SourceFile(name, text))
    assert fe.compilation is not None and not fe.has_errors, \
        [d.message for d in fe.diagnostics]
    return fe


def _json(v: Any) -> str:
    try:
        return V.to_json(v)
    except Exception as exc:  # noqa: BLE001 - a trace must never fail
        return f"<{type(exc).__name__}>"


def run_traced(fe: FrontEnd, backend: str, **kw: Any) -> Trace:
    """Run ``fe``'s program on the virtual clock under ``backend`` ("python" | "llvm")."""
    assert fe.compilation is not None
    if backend == "llvm":  # JIT'd router and lifted loops, as `run --backend llvm`
        compiled, program = llvm_backend.compile_native(
            fe.compilation, compile_program, routing_after=kw.pop("routing_after", 0))
    else:
        compiled = compile_program(fe.compilation)
        program = compiled.program
    trace = Trace(router=getattr(program, "router", None))
    real_emit = scheduler.Runtime.emit
    real_service = scheduler.run_service

    def emit(rt: Any, name: str, payload: Any = None, span: int = -1) -> None:
        trace.emits.append((name, _json(payload)))
        for fn, _inst in rt.bus.subscribers(name):
            trace.starts.append(f"{name} -> {getattr(fn, '__qualname__', fn)}")
        real_emit(rt, name, payload, span)

    async def service(rt: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        payload = await real_service(rt, name, *args, **kwargs)
        trace.errors.append((name, _json(payload.get("_errors"))))
        return payload

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scheduler.Runtime, "emit", emit)
        mp.setattr(scheduler, "run_service", service)
        trace.code = run_factory(program, compiled.spans, compiled.sources,
                                 RunSettings(clock="virtual", **kw), stdout=out, stderr=err)
    trace.out, trace.err = out.getvalue(), err.getvalue()
    return trace


def assert_same(a: Trace, b: Trace) -> None:
    assert a.out == b.out
    assert a.code == b.code
    assert a.errors == b.errors
    assert a.emits == b.emits
    assert a.starts == b.starts
    assert a.err == b.err
