"""Constructs users bring from other languages (issue 15's habits): `try`/`catch`,
`function`, `class`, `import`, `switch`, ... where a statement or member starts.

When a syntax error falls inside one, the parser reports the construct once (CX120, with
what CX has instead) and nothing else up to its end: one error, no cascade. The regions
are found by a scan of the text (strings and comments skipped), made only when a file
has a syntax error.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cxpar.diagnostics.habits import FOREIGN_WORDS as WORDS
from cxpar.diagnostics.habits import foreign_construct
from cxpar.diagnostics.model import Diagnostic
from cxpar.span import SourceFile, Span

#: Words that may come before the construct's word (`async function`, `export class`).
_PREFIXES = {"async", "export", "public", "private", "static", "abstract"}

_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ANY_WORD = re.compile(r"(?<![A-Za-z0-9_$])(?:" + "|".join(WORDS) + r")(?![A-Za-z0-9_$])")


@dataclass(frozen=True, slots=True)
class Foreign:
    """A construct from another language, from ``start`` (its first word: the word or
    a prefix such as `async`) to ``end``; the word itself is at ``at``."""

    word: str
    start: int
    end: int
    at: int


def diagnostic(source: SourceFile, f: Foreign) -> Diagnostic:
    """CX120 for ``f``, on its word."""
    text = source.text
    line = text.count("\n", 0, f.at) + 1
    col = f.at - (text.rfind("\n", 0, f.at) + 1) + 1
    return foreign_construct(
        Span(source.name, line, col, line, col + len(f.word), f.at, f.at + len(f.word)), f.word)


class Regions:
    """The foreign constructs of a text, looked up by offset."""

    def __init__(self, text: str) -> None:
        self.found = scan(text)
        self._starts = [f.start for f in self.found]

    def at(self, pos: int) -> Foreign | None:
        """The construct that ``pos`` falls in, if any."""
        i = bisect.bisect_right(self._starts, pos) - 1
        if i >= 0 and pos < self.found[i].end:
            return self.found[i]
        return None


def scan(text: str) -> list[Foreign]:
    """The foreign constructs that start where a statement or member may start, in
    order (one inside another is covered by it and not listed)."""
    found: list[Foreign] = []
    if _ANY_WORD.search(text) is None:
        return found  # (most files: no need to walk the text)
    i, n = 0, len(text)
    at_start = True  # the next word starts a statement (start of file, after ; { })
    prefix_at: int | None = None
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\f\ufeff":
            i += 1
            continue
        skip = _skip_literal(text, i)
        if skip != i:
            i = skip
            if ch in "\"'`":  # a string (a comment changes nothing)
                at_start, prefix_at = False, None
            continue
        m = _WORD.match(text, i)
        if m is not None:
            word = m.group()
            if at_start and word in _PREFIXES and _construct_follows(text, m.end()):
                prefix_at = i if prefix_at is None else prefix_at
                i = m.end()
                continue
            if at_start and word in WORDS and _opens(text, m.end()):
                start = prefix_at if prefix_at is not None else i
                end = _construct_end(text, m.end(), WORDS[word][1], word)
                found.append(Foreign(word, start, end, i))
                prefix_at = None
                at_start = True  # (one nested in it is covered by it)
                i = max(end, m.end())
                continue
            prefix_at = None
            at_start = False
            i = m.end()
            continue
        prefix_at = None
        at_start = ch in ";{}"
        i += 1
    return found


def _construct_follows(text: str, i: int) -> bool:
    """Whether a construct's word (or another prefix) follows a prefix ending at ``i``."""
    m = _WORD.match(text, _next_code(text, i))
    return m is not None and (m.group() in _PREFIXES or
                              (m.group() in WORDS and _opens(text, m.end())))


def _opens(text: str, i: int) -> bool:
    """Whether what follows the word at ``i`` continues a construct (a name, `{`, `(`, a
    string, `*`) rather than use the word as a variable (`do = 1;`, `class.x`)."""
    j = _next_code(text, i)
    return j < len(text) and (text[j] in "{(\"'`*" or _WORD.match(text, j) is not None)


def _skip_literal(text: str, i: int) -> int:
    """Past a string or comment starting at ``i`` (``i`` itself if none starts there)."""
    ch = text[i]
    if ch in "\"'`":
        j = i + 1
        n = len(text)
        while j < n and text[j] != ch:
            if text[j] == "\\":
                j += 1
            elif text[j] == "\n" and ch != "`":
                return j
            j += 1
        return min(j + 1, n)
    if ch == "#" or text.startswith("//", i):
        j = text.find("\n", i)
        return len(text) if j == -1 else j
    if text.startswith("/*", i):
        j = text.find("*/", i + 2)
        return len(text) if j == -1 else j + 2
    return i


def _code(text: str, i: int) -> Iterator[tuple[int, str]]:
    """The code characters of ``text`` from ``i`` on, with their offsets (strings and
    comments skipped)."""
    n = len(text)
    while i < n:
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        yield i, text[i]
        i += 1


def _construct_end(text: str, i: int, kind: str, word: str) -> int:
    """Where the construct whose word ends at ``i`` ends."""
    if kind == "line":
        j = text.find("\n", i)
        return len(text) if j == -1 else j
    depth = 0
    for k, ch in _code(text, i):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            return k + 1
        elif ch == "\n" and depth == 0 and kind == "stmt":
            return k
        elif ch == "{" and kind == "block" and depth == 0:
            return _continuation(text, _block_end(text, k), word)
        elif ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return k
            depth -= 1
    return len(text)


def _block_end(text: str, i: int) -> int:
    """Past the `}` that closes the `{` at ``i``."""
    depth = 0
    for k, ch in _code(text, i):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return k + 1
    return len(text)


def _continuation(text: str, i: int, word: str) -> int:
    """After a block: `catch`/`finally` continue a `try`, `while (...);` ends a `do`."""
    j = _next_code(text, i)
    m = _WORD.match(text, j)
    nxt = m.group() if m is not None else ""
    if word in ("try", "catch") and nxt in ("catch", "finally"):
        return _construct_end(text, m.end(), "block", nxt)  # type: ignore[union-attr]
    if word == "do" and nxt == "while":
        return _construct_end(text, m.end(), "stmt", nxt)  # type: ignore[union-attr]
    return i


def _next_code(text: str, i: int) -> int:
    n = len(text)
    while i < n:
        if text[i] in " \t\r\n\f":
            i += 1
            continue
        j = _skip_literal(text, i)
        if j != i and text[i] not in "\"'`":
            i = j
            continue
        return i
    return n
