"""Helpers for analysis tests: analyse a snippet, find diagnostics by code."""

from __future__ import annotations

from cxpar.analysis.pipeline import Compilation, analyse
from cxpar.diagnostics.model import Diagnostic
from cxpar.span import SourceFile
from cxpar.syntax.parser import parse


def compile_text(text: str, name: str = "t.cx", **kw: object) -> Compilation:
    """Parse (must succeed) and analyse ``text``."""
    result = parse(SourceFile(name, text))
    assert result.ok and result.program is not None, result.diagnostics
    comp = Compilation(SourceFile(name, text), result.program, **kw)  # type: ignore[arg-type]
    return analyse(comp)


def codes(text: str) -> list[str]:
    return [d.code for d in compile_text(text).diagnostics]


def errors(text: str) -> list[Diagnostic]:
    return [d for d in compile_text(text).diagnostics if d.is_error]


def one(text: str, code: str) -> Diagnostic:
    """The single diagnostic with ``code``."""
    found = [d for d in compile_text(text).diagnostics if d.code == code]
    assert len(found) == 1, (code, compile_text(text).diagnostics)
    return found[0]


def at(d: Diagnostic) -> tuple[int, int, int, int]:
    return (d.span.line, d.span.col, d.span.end_line, d.span.end_col)
