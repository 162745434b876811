"""Incremental parsing for editors: re-parse only the top-level items whose text changed.

:class:`IncrementalParser` gives exactly what :func:`cxpar.syntax.parser.parse` gives
for the whole text, faster after a small edit. The text is split into *chunks* at the
start of a line that follows a line ending (outside strings and comments, at bracket
depth 0) with `;` or `}` -- the end of a top-level item (:func:`split`). Each chunk is
parsed on its own, once; its nodes are kept by the chunk's text and moved to the
chunk's new line and offset when text before it grows or shrinks (:meth:`_Chunk.move`).

A chunk could parse differently alone than inside the file only where an item goes on
past a boundary, so boundaries are never placed before a line that continues an item
(a first character that cannot start one: ``{``, ``(``, ``.``, an operator ...; or a
keyword that cannot: ``else``, ``realize`` -- the contextual lexer reads ``realize`` as
a name at the start of a file but as the keyword after a handler) nor after a line with
a ``///`` comment (it documents the next declaration).

A chunk with a syntax error is handed to the ordinary parser, since error recovery may
look across chunk boundaries and the error limit counts the whole file: it parses from
the first broken chunk on, until its recovery is back at the top level at the start of
a chunk after the last broken one (:func:`_parse_broken`).

Syntax warnings of a chunk are kept with it and moved like its nodes.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cxpar.ast.nodes import Node, Program, Stmt, child_fields
from cxpar.diagnostics.model import Diagnostic, Label
from cxpar.span import SourceFile, Span
from cxpar.syntax.parser import MAX_NESTING, ParseResult, keywords_not_at_item_start, parse

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
_NEXT = re.compile(r"(?:\s+|//[^\n]*|\#[^\n]*|/\*[\s\S]*?\*/)*([A-Za-z_$][A-Za-z0-9_$]*|\Z)?")


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


#: A line that starts with a declaration.
_DECLARATION_LINE = re.compile(r"^(?:conscious|object|on)\b", re.MULTILINE)


def _closed(text: str) -> bool:
    """Whether every bracket and block comment of ``text`` is closed (every chunk but
    the last ends at depth 0 by construction; a last one that does not has an error)."""
    depth = 0
    for m in _SCAN.finditer(text):
        kind = m.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind == "com" and m.group().startswith("/*") and not m.group().endswith("*/"):
            return False
    return depth == 0


def _max_depth(text: str) -> int:
    """The deepest bracket nesting of ``text`` (outside strings and comments)."""
    depth = deepest = 0
    for m in _SCAN.finditer(text):
        if m.lastgroup == "open":
            depth += 1
            deepest = max(deepest, depth)
        elif m.lastgroup == "close":
            depth -= 1
    return deepest


def _next_item(text: str, pos: int) -> re.Match[str]:
    """Blanks and comments from ``pos``; group 1: the word the next item starts with
    (None: it does not start with a word; '' at the end of the text)."""
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
    not_at_start = keywords_not_at_item_start()
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
                word = nxt.group(1)
                if word and word not in not_at_start:
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
    #: The deepest bracket nesting in the chunk (at least the parser's count).
    depth: int = 0

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
        #: Chunks parsed (not reused) by the last :meth:`parse`; None: it had a syntax
        #: error, and ``resumed_at`` says where its items are reused again (None: nowhere).
        self.reparsed: int | None = None
        self.resumed_at: int | None = None
        self._parsed = 0

    def parse(self, source: SourceFile) -> ParseResult:
        """What ``parse(source)`` gives, reusing the chunks of earlier versions."""
        if source.name != self._name:
            self._name, self._chunks = source.name, {}
        text = source.text
        starts = resplit(self._text, self._starts, text)
        self._text, self._starts = text, starts
        old = self._chunks
        new: dict[str, list[_Chunk]] = {}
        placed: list[_Chunk | None] = []  # None: the chunk has a syntax error
        line = 1
        self._parsed = 0
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(text)
            chunk_text = text[start:end]
            if end == len(text) and not _closed(chunk_text):
                placed.append(None)  # left open to the end: broken, no need to parse it
                continue
            placed.append(self._chunk(old, new, source.name, chunk_text, line, start))
            line += chunk_text.count("\n")
        if None not in placed:
            self._chunks = new
            self.reparsed = self._parsed
            return _joined(source.name, [c for c in placed if c is not None])
        # A syntax error. A broken last chunk may be an item left open (a `(` or `{`
        # with no closer) that runs to the end of the file: a declaration that starts a
        # line inside it is a fresh point to split the rest from, so that parsing can
        # resume there once its error recovery is back at the top level.
        starts = list(starts)
        while placed[-1] is None:
            decl = _DECLARATION_LINE.search(text, starts[-1] + 1)
            if decl is None:
                break
            at = decl.start()
            line = text.count("\n", 0, at) + 1
            for i, start in enumerate(more := [at + s for s in split(text[at:])]):
                end = more[i + 1] if i + 1 < len(more) else len(text)
                chunk = self._chunk(old, new, source.name, text[start:end], line, start)
                starts.append(start)
                placed.append(chunk)
                line += text.count("\n", start, end)
        # Keep every chunk met (an undo may bring the old text back).
        for text_, rest in old.items():
            new.setdefault(text_, []).extend(rest)
        self._chunks = new
        self.reparsed = None
        result, self.resumed_at = _parse_broken(source, starts, placed)
        return result

    def _chunk(self, old: dict[str, list[_Chunk]], new: dict[str, list[_Chunk]], name: str,
               chunk_text: str, line: int, start: int) -> _Chunk | None:
        """The chunk of ``chunk_text`` at ``line``/``start``, reused or parsed."""
        bucket = old.get(chunk_text)
        if bucket:
            chunk: _Chunk | None = bucket.pop()
        else:
            chunk = self._parse_chunk(name, chunk_text)
            self._parsed += 1
        if chunk is not None:
            chunk.move(line, start)
            new.setdefault(chunk_text, []).append(chunk)
        return chunk

    @staticmethod
    def _parse_chunk(name: str, text: str) -> _Chunk | None:
        result = parse(SourceFile(name, text))
        if result.program is None or not result.ok:
            return None
        items = result.program.body
        return _Chunk(text, items, _nodes(items), list(result.diagnostics),
                      depth=_max_depth(text))


def _joined(name: str, chunks: list[_Chunk]) -> ParseResult:
    items = [item for c in chunks for item in c.items]
    warnings = [d for c in chunks for d in c.warnings]
    return ParseResult(_program(name, items), warnings)


def _program(name: str, body: list[Any]) -> Program:
    """The program of ``body``, its span from the first item to the last (as ToAst's
    ``start`` builds it)."""
    spans = [item.span for item in body if item is not None]
    span = spans[0].to(spans[-1]) if spans else Span(name, 1, 1, 1, 1, 0, 0)
    return Program(span=span, body=body)


def _parse_broken(source: SourceFile, starts: list[int],
                  placed: list[_Chunk | None]) -> tuple[ParseResult, int | None]:
    """``parse(source)`` when some chunks have syntax errors (None in ``placed``).

    The chunks before the first broken one are used as they are. From its start, the
    text is parsed by the ordinary parser with the text before it blanked out (line
    breaks kept, so every position is the file's own): that is what the parser sees
    there in the whole file -- nothing open, no error yet. That parse stops as soon as it
    has recovered at the start of a chunk after the last broken one
    (:meth:`~cxpar.syntax.parser.Parser.parse`'s ``resume_at``), and those chunks are
    used as they are too. If a diagnostic points before the first broken chunk (a
    message that looked back at code there), the whole file is parsed (resuming the
    same way). Returns the result and where the chunks are used again (if they are)."""
    first = placed.index(None)
    last = len(placed) - 1 - placed[::-1].index(None)
    resume_at = frozenset(starts[last + 1:])
    room = MAX_NESTING - max((c.depth for c in placed[last + 1:] if c is not None), default=0)
    begin = starts[first]
    text = source.text
    before = [c for c in placed[:first] if c is not None]
    blank = "\n".join(" " * len(line) for line in text[:begin].split("\n"))
    rest = parse(SourceFile(source.name, blank + text[begin:]), resume_at, room)
    if rest.program is None or any(
            d.span.start < begin or any(lb.span.start < begin for lb in d.labels)
            for d in rest.diagnostics):
        before = []
        rest = parse(source, resume_at, room)
        if rest.program is None:
            return rest, None
    body: list[Any] = [item for c in before for item in c.items] + rest.program.body
    diagnostics = [d for c in before for d in c.warnings] + rest.diagnostics
    if rest.stopped_at is not None:
        after = [c for c in placed[starts.index(rest.stopped_at):] if c is not None]
        body += [item for c in after for item in c.items]
        diagnostics += [d for c in after for d in c.warnings]
    return ParseResult(_program(source.name, body), diagnostics), rest.stopped_at
