"""The formatter's entry points: source text in, canonical source text out."""

from __future__ import annotations

import gc

from cxpar.diagnostics.model import Diagnostic
from cxpar.fmt.cst import parse_cst
from cxpar.fmt.doc import render
from cxpar.fmt.printer import print_cst
from cxpar.span import SourceFile

#: Columns the printer fills before it breaks a group (docs/style.md).
LINE_WIDTH = 100


class FormatError(Exception):
    """The source has syntax errors; ``diagnostics`` says where. The text is left as is."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        super().__init__(f"{len(diagnostics)} syntax error(s)")
        self.diagnostics = diagnostics


def format_file(source: SourceFile) -> str:
    """The canonical text of ``source``; raises :class:`FormatError` if it does not parse."""
    from cxpar.driver import check_depth
    from cxpar.syntax.parser import parse

    result = parse(source)
    errors = [d for d in result.diagnostics if d.is_error]
    if not errors and result.program is not None:
        deep = check_depth(result.program)
        if deep is not None:
            errors.append(deep)
    if errors or result.program is None:
        raise FormatError(errors)
    if not source.text.strip():
        return ""
    # The document is a tree of small acyclic objects: collecting while it is built only
    # costs time (about a third of the formatter's, measured in bench/editor.py).
    enabled = gc.isenabled()
    gc.disable()
    try:
        doc = print_cst(parse_cst(source.text))
        return render(doc, LINE_WIDTH).rstrip() + "\n"
    finally:
        if enabled:
            gc.enable()


def format_source(text: str, name: str = "<stdin>") -> str:
    """Format CX source text (the CLI, the language server and tests all call this)."""
    from cxpar.syntax.source import decode

    decoded = decode(text.encode("utf-8", "surrogatepass"), name)
    if isinstance(decoded, Diagnostic):
        raise FormatError([decoded])
    return format_file(decoded)
