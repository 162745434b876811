"""Diagnostics as data (sqlglot's errors style): passes collect them, renderers print them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from cxpar.span import Span


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Label:
    """A secondary span with a short message (``-- first declared here``)."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in CX source.

    ``message`` is lowercase with no final period and code in backticks;
    ``label`` is the short text under the caret; ``help`` says how to fix it.
    """

    code: str
    severity: Severity
    message: str
    span: Span
    label: str = ""
    labels: tuple[Label, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    help: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR


def error(code: str, message: str, span: Span, *, label: str = "", help: str | None = None,
          notes: tuple[str, ...] = (), labels: tuple[Label, ...] = ()) -> Diagnostic:
    """An error diagnostic."""
    return Diagnostic(code, Severity.ERROR, message, span, label, labels, notes, help)


def warning(code: str, message: str, span: Span, *, label: str = "", help: str | None = None,
            notes: tuple[str, ...] = (), labels: tuple[Label, ...] = ()) -> Diagnostic:
    """A warning diagnostic."""
    return Diagnostic(code, Severity.WARNING, message, span, label, labels, notes, help)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.col, d.code)
