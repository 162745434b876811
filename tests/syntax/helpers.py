"""Shared helpers of the syntax tests (sqlglot's ``validate_identity`` style)."""

from __future__ import annotations

from cxpar.ast import nodes as n
from cxpar.diagnostics.model import Diagnostic
from cxpar.syntax.parser import parse_text


def diags(text: str) -> list[Diagnostic]:
    return parse_text(text, "t.cx").diagnostics


def ok(text: str) -> n.Program:
    """Parse ``text``, asserting there is no diagnostic at all; return the program."""
    result = parse_text(text, "t.cx")
    assert [(d.code, str(d.span), d.message) for d in result.diagnostics] == []
    assert result.program is not None
    return result.program


def first_error(text: str, code: str, line: int, col: int, end_col: int,
                found: str | None = None) -> Diagnostic:
    """The first diagnostic of ``text`` has this code and span (1-based, end exclusive)."""
    ds = diags(text)
    assert ds, f"no diagnostic for {text!r}"
    d = ds[0]
    got = (d.code, d.span.line, d.span.col, d.span.end_col)
    assert got == (code, line, col, end_col), (got, d.message, [x.message for x in ds])
    assert d.is_error
    if found is not None:
        assert d.message.endswith(f"found {found}"), d.message
    return d
