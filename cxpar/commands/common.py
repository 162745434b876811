"""Helpers shared by commands: printing diagnostics with source lines."""

from __future__ import annotations

import os
import sys
from typing import TextIO

from cxpar.diagnostics.model import Diagnostic
from cxpar.diagnostics.render import render_json, render_text
from cxpar.driver import FrontEnd


def use_colour(stream: TextIO) -> bool:
    """Colour only on a TTY, and never with ``NO_COLOR`` set."""
    if os.environ.get("NO_COLOR") is not None:
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def print_diagnostics(fe: FrontEnd, fmt: str = "text", *, out: TextIO | None = None,
                      err: TextIO | None = None) -> None:
    """Text to stderr (rustc style) or JSON lines to stdout (SPEC §7)."""
    out = out or sys.stdout
    err = err or sys.stderr
    lines = fe.source.text.split("\n") if fe.source is not None else []

    def source_line(_file: str, line: int) -> str:
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    colour = use_colour(err)
    for d in fe.diagnostics:
        if fmt == "json":
            out.write(render_json(d) + "\n")
        else:
            err.write(render_text(d, source_line, colour) + "\n")


def count(diags: list[Diagnostic]) -> tuple[int, int]:
    """``(errors, warnings)``."""
    errors = sum(1 for d in diags if d.is_error)
    return errors, sum(1 for d in diags if d.severity.value == "warning")
