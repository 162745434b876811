"""Runtime errors and their rendering as CX diagnostics (never Python tracebacks)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from cxpar.display import safe
from cxpar.span import Span

#: A span table entry: a ``Span`` or a ``(file, line, col, end_line, end_col)`` tuple.
SpanLike = Any

NO_SPAN_ID = -1


class CxRuntimeError(Exception):
    """An error raised while evaluating CX code; ``span_id`` indexes the span table
    (``where``: a span tuple found another way, see :func:`resource_error`).

    ``code`` (``CX5xx``, see ``cxpar explain``) defaults to the code its message has in
    :data:`RUNTIME_CODES`.
    """

    __slots__ = ("message", "span_id", "where", "code")

    def __init__(self, message: str, span_id: int = NO_SPAN_ID,
                 where: tuple[str, int, int, int, int] | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span_id = span_id
        self.where = where
        self.code = code or code_of(message)

    def at(self, span_id: int) -> CxRuntimeError:
        """This error, located at ``span_id`` unless it already has a location."""
        if self.span_id != NO_SPAN_ID or self.where is not None:
            return self
        located = copy.copy(self)  # every other attribute (a code, …) stays
        located.span_id = span_id
        return located

    def span(self, spans: Sequence[SpanLike]) -> tuple[str, int, int, int, int] | None:
        """Where the error happened, as a span tuple (None if unknown)."""
        return self.where if self.where is not None else lookup_span(spans, self.span_id)


#: Errors that CX code causes by running out of a resource, and what to tell the user.
_RESOURCE = {
    RecursionError: "nesting too deep: Python's recursion limit was reached",
    MemoryError: "out of memory: a value grew too large",
}


def resource_error(exc: BaseException, sources: Mapping[str, str]) -> BaseException:
    """``exc`` as a :class:`CxRuntimeError` located at the CX code that ran when it
    happened, for errors the program causes (recursion, memory); else ``exc``.

    Generated code is compiled with the CX file name and CX positions, so the innermost
    traceback frame from a CX file gives the span (columns there are UTF-8 bytes).
    """
    message = next((m for cls, m in _RESOURCE.items() if isinstance(exc, cls)), None)
    if message is None:
        return exc
    where = None
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in sources:
            pos = next(itertools.islice(code.co_positions(), tb.tb_lasti // 2, None), None)
            if pos is not None and pos[0] is not None:
                where = _char_span(sources[code.co_filename], code.co_filename, pos)
        tb = tb.tb_next
    return CxRuntimeError(message, where=where)


def _char_span(text: str, file: str, pos: tuple[Any, ...]) -> tuple[str, int, int, int, int]:
    line, end_line, col, end_col = pos
    end_line = end_line or line
    lines = text.split("\n")

    def char_col(ln: int, byte_col: Any) -> int:
        src = lines[ln - 1] if 1 <= ln <= len(lines) else ""
        return len(src.encode("utf-8")[: byte_col or 0].decode("utf-8", "ignore")) + 1

    return (file, line, char_col(line, col), end_line, char_col(end_line, end_col))


class Stopped(Exception):  # noqa: N818 - a signal, not an error
    """The program is ending (``--timeout``, Ctrl-C, an event flood): raised where a
    running handler notices, it unwinds that handler silently (never reported)."""


#: Runtime error codes by message: the first whose pattern matches the start (SPEC
#: rule 6; docs/diagnostics.md "Runtime errors"). New kinds of runtime error either pass
#: ``code=`` or add a row here.
RUNTIME_CODES: tuple[tuple[str, str], ...] = (
    (r"cannot (read|set) property `.*` of null|cannot index null", "CX501"),
    (r"index .* out of range", "CX503"),
    (r"division by zero", "CX504"),
    (r"unknown service|`(timeout|retries|concurrency|priority)`", "CX505"),
    (r"unknown entity|`new ", "CX506"),
    (r"program timed out|stream timed out", "CX510"),
    (r"virtual clock stalled", "CX511"),
    (r"cannot |index must|object key must|len\(\)|keys\(\)", "CX502"),
)


def code_of(message: str) -> str:
    """The ``CX5xx`` code of a runtime error message (``CX500``: any other)."""
    import re

    for pattern, code in RUNTIME_CODES:
        if re.match(pattern, message):
            return code
    return "CX500"


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


def still_running(names: Sequence[str]) -> list[str]:
    """The note of a timeout or interrupt report naming what was still running (the
    first ten); no note when nothing was."""
    if not names:
        return []
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return [f"still running: {', '.join(names[:10])}{more}"]


def render_error(message: str, span: tuple[str, int, int, int, int] | None,
                 sources: Mapping[str, str], *, level: str = "error",
                 notes: Sequence[str] = (), code: str | None = None) -> str:
    """Render ``message`` at ``span`` in the layout of compile diagnostics (rustc's):
    ``error[CX501]: …``, `` --> file:line:col``, the source line in a gutter, a caret
    under the span, then ``= note:`` lines (control characters escaped, as there)."""
    from cxpar.diagnostics.render import _expand, _window

    head = f"{level}[{code}]" if code else level
    out = [f"{head}: {safe(message)}"]
    pad = "  "
    if span is not None:
        file, line, col, end_line, end_col = span
        pad = " " * len(str(line))
        out.append(f"{pad}--> {safe(file)}:{line}:{col}")
        text = sources.get(file)
        lines = text.split("\n") if text is not None else []
        if 1 <= line <= len(lines):
            src = lines[line - 1].rstrip("\r")
            shown, start = _expand(src, col)
            if end_line == line:
                _, end = _expand(src, max(end_col, col + 1))
            else:
                end = max(len(shown), start + 1)
            shown, start, end = _window(shown, start, end)
            out.append(f"{pad} |")
            out.append(f"{line} | {shown}")
            out.append(f"{pad} | {' ' * start}{'^' * max(1, end - start)}")
    for note in notes:
        out.append(f"{pad} = note: {safe(note)}")
    return "\n".join(out)
