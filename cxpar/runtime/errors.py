"""Runtime errors and their rendering as CX diagnostics (never Python tracebacks)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cxpar.display import safe
from cxpar.span import Span

#: A span table entry: a ``Span`` or a ``(file, line, col, end_line, end_col)`` tuple.
SpanLike = Any

NO_SPAN_ID = -1


class CxRuntimeError(Exception):
    """An error raised while evaluating CX code; ``span_id`` indexes the span table."""

    __slots__ = ("message", "span_id")

    def __init__(self, message: str, span_id: int = NO_SPAN_ID) -> None:
        super().__init__(message)
        self.message = message
        self.span_id = span_id


def _span_tuple(span: SpanLike) -> tuple[str, int, int, int, int] | None:
    if span is None:
        return None
    if isinstance(span, Span):
        return (span.file, span.line, span.col, span.end_line, span.end_col)
    try:
        file, line, col, end_line, end_col = tuple(span)[:5]
    except (TypeError, ValueError):
        return None
    return (str(file), int(line), int(col), int(end_line), int(end_col))


def lookup_span(spans: Sequence[SpanLike], span_id: int) -> tuple[str, int, int, int, int] | None:
    """The span table entry ``span_id`` as a tuple, or None when unknown."""
    if 0 <= span_id < len(spans):
        return _span_tuple(spans[span_id])
    return None


def render_error(message: str, span: tuple[str, int, int, int, int] | None,
                 sources: Mapping[str, str], *, level: str = "error",
                 notes: Sequence[str] = ()) -> str:
    """Render ``message`` at ``span`` like a compiler diagnostic (rustc layout)."""
    out = [f"{level}: {safe(message)}"]
    if span is not None:
        file, line, col, end_line, end_col = span
        out.append(f"  --> {safe(file)}:{line}:{col}")
        text = sources.get(file)
        if text is not None:
            lines = text.split("\n")
            if 1 <= line <= len(lines):
                src = lines[line - 1].rstrip("\r")
                width = max(2, len(str(line)))
                pad = " " * width
                if end_line == line and end_col > col:
                    n = end_col - col
                else:
                    n = max(1, len(src) - col + 1)
                lead = len(safe(src[:col - 1], keep_tabs=True))
                n = len(safe(src[col - 1:col - 1 + n], keep_tabs=True)) or n
                out.append(f"{pad} |")
                out.append(f"{line:>{width}} | {safe(src, keep_tabs=True)}")
                out.append(f"{pad} | {' ' * lead}{'^' * max(1, n)}")
    for note in notes:
        out.append(f"   = note: {safe(note)}")
    return "\n".join(out)
