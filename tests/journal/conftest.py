"""Helpers: run CX text in-process with a journal (``--journal``) or a replay."""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxpar.codegen.module import compile_program
from cxpar.driver import front_end_source
from cxpar.journal import attach
from cxpar.runtime.providers.sim import SimProvider
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile


@dataclass
class Run:
    code: int
    out: str
    err: str
    served: int
    recorded: int
    not_recorded: int
    warnings: list[str]


def run_journaled(text: str, *, journal: Path | None = None, replay: Path | None = None,
                  provider: Any = None, clock: str = "virtual", name: str = "t.cx",
                  **kw: Any) -> Run:
    """Compile CX ``text`` and run it once with ``provider`` (default: the sim) wrapped
    by a journal at ``journal`` (record and serve) or ``replay`` (serve only)."""
    source = textwrap.dedent(text)
    fe = front_end_source(SourceFile(name, source))
    assert not fe.has_errors and fe.compilation is not None, fe.diagnostics
    compiled = compile_program(fe.compilation)
    inner = provider if provider is not None else SimProvider(0)
    session = attach(inner, journal=None if journal is None else str(journal),
                     replay=None if replay is None else str(replay), program=name,
                     source=source, kind="run")
    assert session is not None
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("timeout_ms", 60_000)
    try:
        code = run_factory(compiled.program, compiled.spans, compiled.sources,
                           RunSettings(clock=clock, **kw), provider=session.provider,
                           stdout=out, stderr=err)
    finally:
        session.finish(0)
    p = session.provider
    return Run(code, out.getvalue(), err.getvalue(), p.served, p.recorded, p.not_recorded,
               session.warnings)


def run_batch_journaled(text: str, input_path: Path, *, journal: Path, ordered: bool = True,
                        provider: Any = None, **kw: Any) -> tuple[int, str, Any]:
    """Run ``text`` as a batch over ``input_path`` with a journal; ``(code, stdout,
    the journaled provider)``."""
    from cxpar.runtime.streams import run_batch

    source = textwrap.dedent(text)
    fe = front_end_source(SourceFile("b.cx", source))
    assert not fe.has_errors and fe.compilation is not None, fe.diagnostics
    compiled = compile_program(fe.compilation)
    session = attach(provider if provider is not None else SimProvider(0),
                     journal=str(journal), replay=None, program="b.cx", source=source,
                     kind="batch")
    assert session is not None
    out, err = io.StringIO(), io.StringIO()
    settings = RunSettings(input=str(input_path), ordered=ordered, progress=False,
                           clock="virtual", **kw)
    try:
        code = run_batch(compiled.program, compiled.spans, compiled.sources, settings,
                         provider=session.provider, stdout=out, stderr=err)
    finally:
        session.finish(0)
    return code, out.getvalue(), session.provider
