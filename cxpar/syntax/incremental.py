"""Incremental parsing for editors: re-parse only the top-level items whose text changed.

:class:`IncrementalParser` gives exactly what :func:`cxpar.syntax.parser.parse` gives
for the whole text, faster after a small edit. The text is split into *chunks* at the
start of a line that follows a line ending (outside strings and comments, at bracket
depth 0) with `;` or `}` -- the end of a top-level item (:func:`split`). Each chunk is
parsed on its own, once; its nodes are kept by the chunk's text and moved to the
chunk's new line and offset when text before it grows or shrinks (:meth:`_Chunk.move`).

Anything that could make a chunk parse differently alone than inside the file falls
back to a whole-file parse:

* a chunk with a syntax error (error recovery may look across chunk boundaries, and the
  error limit counts the whole file);
* a boundary is never placed before a line that continues an item (``else``, or a
  first character that cannot start an item: ``{``, ``(``, ``.``, an operator ...) nor
  after a line with a ``///`` comment (it documents the next declaration).

Syntax warnings of a chunk are kept with it and moved like its nodes.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cxpar.ast.nodes import Node, Program, Stmt, child_fields
from cxpar.diagnostics.model import Diagnostic, Label
from cxpar.span import SourceFile, Span
from cxpar.syntax.parser import ParseResult, parse

_SCAN = re.compile(r"""
    (?P<str>"(?:[^"\\\n\r]|\\[^\n\r])*"?)
  | (?P<doc>///[^\n]*)
  | (?P<com>//[^\n]*|\#[^\n]*|/\*[\s\S]*?(?:\*/|\Z))
  | (?P<open>[{(\[])
  | (?P<close>[})\]])
  | (?P<semi>;)
  | (?P<nl>\n)
""", re.VERBOSE)
#: Blanks and comments, then what the next item starts with.
_NEXT = re.compile(r"(?:\s+|//[^\n]*|\#[^\n]*|/\*[\s\S]*?\*/)*(else\b|[A-Za-z_]|\Z)?")


def split(text: str) -> list[int]:
    """Offsets where chunks start (the first is 0): line starts after a line whose last
    code is a depth-0 `;` or `}` and before a line that starts a new item."""
    return [0, *_boundaries(text, 0)]


def resplit(old: str, old_starts: list[int], text: str) -> list[int]:
    """``split(text)``, given ``old_starts == split(old)``: only the region around the
    change is scanned again. A chunk start is a reset point of the scanner (depth 0,
    nothing pending), so the scan restarts at the last start before the change whose
    decision did not look at changed text, and stops at the first start after the change
    that was a start before it too; the starts after it are the old ones, moved."""
    pre = _common_prefix(old, text)
    if pre == len(old) == len(text):
        return list(old_starts)
    suf = _common_prefix(old[::-1][:len(old) - pre], text[::-1][:len(text) - pre])
    delta = len(text) - len(old)
    i = max(0, bisect.bisect_left(old_starts, pre) - 1)
    # a start's decision looked at the line before it and at what follows it up to the
    # next item's first character (plus one for `else\b`)
    while i > 0 and _next_item(text, old_starts[i]).end() + 1 >= pre:
        i -= 1
    out = old_starts[:i + 1]
    unchanged_from = len(text) - suf  # text[unchanged_from:] is old[unchanged_from - delta:]
    olds = set(old_starts)
    for b in _boundaries(text, old_starts[i]):
        out.append(b)
        if b >= unchanged_from and b - delta in olds:
            j = bisect.bisect_right(old_starts, b - delta)
            out.extend(x + delta for x in old_starts[j:])
            break
    return out


def _next_item(text: str, pos: int) -> re.Match[str]:
    """Blanks and comments from ``pos``; group 1: how the next item starts (None: not as
    an item does; '' at the end of the text)."""
    m = _NEXT.match(text, pos)
    assert m is not None  # every part of the pattern is optional
    return m


def _common_prefix(a: str, b: str) -> int:
    """The length of the longest common prefix (binary search over C comparisons)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _boundaries(text: str, pos: int) -> Iterator[int]:
    """The chunk starts after ``pos`` (itself a chunk start), in order."""
    depth = 0
    ends_item = False  # the line's code so far ends with a depth-0 `;` or `}`
    doc_line = False
    prev_end = pos
    for m in _SCAN.finditer(text, pos):
        kind = m.lastgroup
        at = m.start()
        if at > prev_end and not text[prev_end:at].isspace():
            ends_item = False  # a word or operator since the last match
        prev_end = m.end()
        if kind == "nl":
            if ends_item and not doc_line and depth == 0:
                nxt = _next_item(text, prev_end)
                if nxt.group(1) is not None and nxt.group(1) != "else" \
                        and nxt.end(1) < len(text):
                    yield prev_end
            ends_item = doc_line = False
        elif kind == "open":
            depth += 1
            ends_item = False
        elif kind == "close":
            depth -= 1
            ends_item = depth == 0 and text[at] == "}"
        elif kind == "semi":
            ends_item = depth == 0
        elif kind == "str":
            ends_item = False
        elif kind == "doc":
            doc_line = True
        elif "\n" in m.group():  # a block comment over several lines
            ends_item = False


@dataclass(eq=False)
class _Chunk:
    """One parsed chunk: its top-level items, their nodes and syntax warnings, placed at
    ``line``/``offset`` (where the chunk starts in the document it was last used in)."""

    text: str
    items: list[Stmt]
    nodes: list[Node]
    warnings: list[Diagnostic]
    line: int = 1
    offset: int = 0

    def move(self, line: int, offset: int) -> None:
        """Shift every span of the chunk so that it starts at ``line``/``offset``."""
        dl, do = line - self.line, offset - self.offset
        if dl == 0 and do == 0:
            return
        for node in self.nodes:
            node.span = _shift(node.span, dl, do)
        self.warnings = [_shift_diagnostic(d, dl, do) for d in self.warnings]
        self.line, self.offset = line, offset


def _shift(s: Span, dl: int, do: int) -> Span:
    return Span(s.file, s.line + dl, s.col, s.end_line + dl, s.end_col, s.start + do,
                s.end + do)


def _shift_diagnostic(d: Diagnostic, dl: int, do: int) -> Diagnostic:
    return dataclasses.replace(d, span=_shift(d.span, dl, do), labels=tuple(
        Label(_shift(lb.span, dl, do), lb.message) for lb in d.labels))


def _nodes(items: list[Stmt]) -> list[Node]:
    """Every node under ``items``, each once (a desugaring may share a node)."""
    seen: set[int] = set()
    out: list[Node] = []
    stack: list[Node] = list(items)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        for name in child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, Node):
                stack.append(value)
            elif isinstance(value, list):
                stack.extend(v for v in value if isinstance(v, Node))
    return out


class IncrementalParser:
    """Parses successive versions of one document, re-parsing only changed chunks."""

    def __init__(self) -> None:
        self._name: str | None = None
        self._chunks: dict[str, list[_Chunk]] = {}
        self._text = ""
        self._starts = [0]
        #: Chunks parsed (not reused) by the last :meth:`parse`; None: a whole-file parse.
        self.reparsed: int | None = None

    def parse(self, source: SourceFile) -> ParseResult:
        """What ``parse(source)`` gives, reusing the chunks of earlier versions."""
        if source.name != self._name:
            self._name, self._chunks = source.name, {}
        text = source.text
        starts = resplit(self._text, self._starts, text)
        self._text, self._starts = text, starts
        old = self._chunks
        new: dict[str, list[_Chunk]] = {}
        items: list[Stmt] = []
        warnings: list[Diagnostic] = []
        line = 1
        reparsed = 0
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(text)
            chunk_text = text[start:end]
            bucket = old.get(chunk_text)
            chunk = bucket.pop() if bucket else None
            if chunk is None:
                chunk = self._parse_chunk(source.name, chunk_text)
                reparsed += 1
                if chunk is None:  # a syntax error: the rest of the file decides
                    for text_, rest in new.items():
                        old.setdefault(text_, []).extend(rest)
                    self._chunks = old
                    self.reparsed = None
                    return _parse_rest(source, start, items, warnings)
            chunk.move(line, start)
            new.setdefault(chunk_text, []).append(chunk)
            items.extend(chunk.items)
            warnings.extend(chunk.warnings)
            line += chunk_text.count("\n")
        self._chunks = new
        self.reparsed = reparsed
        if items:
            span = items[0].span.to(items[-1].span)
        else:
            span = Span(source.name, 1, 1, 1, 1, 0, 0)
        return ParseResult(Program(span=span, body=items), warnings)

    @staticmethod
    def _parse_chunk(name: str, text: str) -> _Chunk | None:
        result = parse(SourceFile(name, text))
        if result.program is None or not result.ok:
            return None
        items = result.program.body
        return _Chunk(text, items, _nodes(items), list(result.diagnostics))


def _parse_rest(source: SourceFile, start: int, items: list[Stmt],
                warnings: list[Diagnostic]) -> ParseResult:
    """``parse(source)`` when the items before ``start`` (a chunk start) parsed without
    errors into ``items``/``warnings``: the text from ``start`` is parsed with the text
    before it blanked out (line breaks kept, so every position is the file's own), which
    is what the parser sees at ``start`` of the whole file -- nothing open, no error yet.
    If a diagnostic points before ``start`` (a message that looked back at code there),
    the whole file is parsed."""
    if start == 0:
        return parse(source)
    text = source.text
    blank = "\n".join(" " * len(line) for line in text[:start].split("\n"))
    rest = parse(SourceFile(source.name, blank + text[start:]))
    if rest.program is None or any(
            d.span.start < start or any(lb.span.start < start for lb in d.labels)
            for d in rest.diagnostics):
        return parse(source)
    body = items + rest.program.body
    span = body[0].span.to(body[-1].span) if body else Span(source.name, 1, 1, 1, 1, 0, 0)
    return ParseResult(Program(span=span, body=body), warnings + rest.diagnostics)
