"""The one place where LSP positions meet CX positions.

LSP counts columns in UTF-16 code units unless client and server agree on another
encoding (``utf-8``, ``utf-32``); CX spans count code points (1-based lines and columns)
and character offsets. :class:`LineIndex` converts both ways for one document text.
"""

from __future__ import annotations

import bisect

from lsprotocol import types as t

from cxpar.span import Span


def _units(ch: str, encoding: str) -> int:
    if encoding == "utf-32":
        return 1
    if encoding == "utf-8":
        return len(ch.encode("utf-8", "surrogatepass"))
    return 2 if ord(ch) > 0xFFFF else 1


class LineIndex:
    """Line starts of one text, and conversions in the negotiated position encoding."""

    def __init__(self, text: str, encoding: str = "utf-16") -> None:
        self.text = text
        self.encoding = encoding
        self.starts = [0]
        i = text.find("\n")
        while i >= 0:
            self.starts.append(i + 1)
            i = text.find("\n", i + 1)

    def line_text(self, line: int) -> str:
        """0-based ``line`` without its newline."""
        if not 0 <= line < len(self.starts):
            return ""
        end = self.starts[line + 1] - 1 if line + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[line]:end]

    # ----------------------------------------------------------- LSP -> CX

    def offset(self, pos: t.Position) -> int:
        """The character offset of an LSP position (clamped to the text)."""
        line = min(max(pos.line, 0), len(self.starts) - 1)
        text = self.line_text(line)
        if self.encoding == "utf-32":
            col = min(pos.character, len(text))
        else:
            units = 0
            col = 0
            while col < len(text) and units < pos.character:
                units += _units(text[col], self.encoding)
                col += 1
        return self.starts[line] + col

    # ----------------------------------------------------------- CX -> LSP

    def position(self, offset: int) -> t.Position:
        """The LSP position of a character offset."""
        offset = min(max(offset, 0), len(self.text))
        line = bisect.bisect_right(self.starts, offset) - 1
        return self.position_at(line, offset - self.starts[line])

    def position_at(self, line: int, col: int) -> t.Position:
        """The LSP position of 0-based ``line`` and code-point column ``col``."""
        text = self.line_text(line)
        if self.encoding == "utf-32":
            return t.Position(line=line, character=col)
        head = text[:col]
        units = sum(_units(c, self.encoding) for c in head) + max(0, col - len(text))
        return t.Position(line=line, character=units)

    def range(self, span: Span) -> t.Range:
        """The LSP range of a CX span (1-based lines and code-point columns)."""
        start = self.position_at(span.line - 1, span.col - 1)
        end = self.position_at(span.end_line - 1, span.end_col - 1)
        return t.Range(start=start, end=end)

    def range_of(self, start: int, end: int) -> t.Range:
        return t.Range(start=self.position(start), end=self.position(end))
