"""Render diagnostics like rustc/Elm (text) or as JSON lines (SPEC §7)."""

from __future__ import annotations

import json
from collections.abc import Callable

from cxpar.diagnostics.model import Diagnostic, Severity
from cxpar.display import escape_char, is_unsafe, safe

TAB = 4
#: Source lines longer than this are cut to a window around the underline.
MAX_WIDTH = 120

_COLOURS = {
    Severity.ERROR: "\x1b[1;31m",
    Severity.WARNING: "\x1b[1;33m",
    Severity.NOTE: "\x1b[1;36m",
}
_BOLD = "\x1b[1m"
_BLUE = "\x1b[1;34m"
_RESET = "\x1b[0m"


def _expand(line: str, col: int) -> tuple[str, int]:
    """``line`` as displayed (tabs expanded, control characters escaped) and the 0-based
    display column of 1-based ``col``."""
    out: list[str] = []
    width = 0
    display_col = None
    for i, ch in enumerate(line):
        if i == col - 1:
            display_col = width
        if ch == "\t":
            ch = " " * (TAB - width % TAB)
        elif is_unsafe(ch):
            ch = escape_char(ch)
        out.append(ch)
        width += len(ch)
    text = "".join(out)
    if display_col is None:
        display_col = len(text) + (col - 1 - len(line))
    return text, max(display_col, 0)


def _window(shown: str, start: int, end: int) -> tuple[str, int, int]:
    """Cut a long display line to at most ~MAX_WIDTH columns around ``start``..``end``."""
    if len(shown) <= MAX_WIDTH:
        return shown, start, end
    end = min(max(end, start + 1), start + MAX_WIDTH // 2)
    lo = max(0, min(start - MAX_WIDTH // 4, len(shown) - MAX_WIDTH))
    hi = min(len(shown), max(lo + MAX_WIDTH, end))
    head = "..." if lo > 0 else ""
    tail = "..." if hi < len(shown) else ""
    shift = len(head) - lo
    return head + shown[lo:hi] + tail, start + shift, end + shift


def render_text(d: Diagnostic, source_line: Callable[[str, int], str],
                colour: bool = False) -> str:
    """The rustc-style block for ``d``; ``source_line(file, line)`` gives source text."""

    def c(style: str, s: str) -> str:
        return f"{style}{s}{_RESET}" if colour else s

    sev = d.severity.value
    head = c(_COLOURS[d.severity], f"{sev}[{d.code}]") + c(_BOLD, f": {safe(d.message)}")
    s = d.span
    file = safe(s.file)
    num = str(s.line)
    pad = " " * len(num)
    lines = [head, f"{pad}{c(_BLUE, '-->')} {file}:{s.line}:{s.col}"]
    marks: list[tuple[int, int, str, str, str]] = []  # line, order, file, underline, style
    text = source_line(s.file, s.line)
    if d.code in ("CX001", "CX002", "CX003") and not text and not d.labels:
        # about the file itself (cannot read it, not text, too large): no source to show
        lines += [f"{pad} {c(_BLUE, '=')} {c(_BOLD, 'help')}: {safe(d.help)}"] if d.help else []
        return "\n".join(lines) + "\n"
    shown, start = _expand(text, s.col)
    if s.end_line == s.line:
        _, end = _expand(text, max(s.end_col, s.col + 1))
    else:
        end = max(len(shown), start + 1)
    shown, start, end = _window(shown, start, end)
    caret = " " * start + "^" * max(end - start, 1) + (" " + safe(d.label) if d.label else "")
    marks.append((s.line, 0, shown, caret, _COLOURS[d.severity]))
    for i, lab in enumerate(d.labels, 1):
        ltext = source_line(lab.span.file, lab.span.line)
        lshown, lstart = _expand(ltext, lab.span.col)
        _, lend = _expand(ltext, max(lab.span.end_col, lab.span.col + 1))
        lshown, lstart, lend = _window(lshown, lstart, lend)
        under = " " * lstart + "-" * max(lend - lstart, 1) + " " + safe(lab.message)
        marks.append((lab.span.line, i, lshown, under, _BLUE))
    marks.sort()
    width = max(len(str(m[0])) for m in marks)
    pad = " " * width
    lines[1] = f"{pad}{c(_BLUE, '-->')} {file}:{s.line}:{s.col}"
    previous = None
    for line_no, _, shown_line, under, style in marks:
        if previous is None or line_no != previous:
            lines.append(f"{pad} {c(_BLUE, '|')}")
            lines.append(f"{c(_BLUE, str(line_no).rjust(width))} {c(_BLUE, '|')} {shown_line}")
        lines.append(f"{pad} {c(_BLUE, '|')} {c(style, under)}")
        previous = line_no
    for note in d.notes:
        lines.append(f"{pad} {c(_BLUE, '=')} {c(_BOLD, 'note')}: {safe(note)}")
    if d.help:
        lines.append(f"{pad} {c(_BLUE, '=')} {c(_BOLD, 'help')}: {safe(d.help)}")
    return "\n".join(lines) + "\n"


def render_json(d: Diagnostic) -> str:
    """One JSON object (a line) with exactly the keys of SPEC §7."""
    s = d.span
    return json.dumps({
        "file": utf8(s.file), "line": s.line, "col": s.col, "end_line": s.end_line,
        "end_col": s.end_col, "severity": d.severity.value, "code": d.code,
        "message": utf8(d.message),
    }, ensure_ascii=False)


def utf8(text: str) -> str:
    """``text`` as valid UTF-8: a file name's undecodable bytes (lone surrogates, PEP 383)
    become ``\\xNN`` (JSON escapes control characters itself)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(escape_char(ch) if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def summary(files: int, errors: int, warnings: int) -> str:
    """The closing line of ``cxpar check``."""

    def plural(k: int, word: str) -> str:
        return f"{k} {word}{'' if k == 1 else 's'}"

    return (f"checked {plural(files, 'file')}: {plural(errors, 'error')}, "
            f"{plural(warnings, 'warning')}")
