"""Source positions shared by every stage (a leaf module: imports nothing of cxpar)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Span:
    """A region of CX source: 1-based line/col in code points, end exclusive.

    ``start``/``end`` are 0-based character offsets into the source text.
    """

    file: str
    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0
    end: int = 0

    def to(self, other: Span) -> Span:
        """The span from the start of ``self`` to the end of ``other``."""
        return Span(self.file, self.line, self.col, other.end_line, other.end_col,
                    self.start, other.end)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<builtin>", 1, 1, 1, 1)


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A decoded CX source text and its display name."""

    name: str
    text: str

    def line_text(self, line: int) -> str:
        """The text of 1-based ``line`` without its newline ('' if out of range)."""
        lines = self.text.split("\n")
        if 1 <= line <= len(lines):
            return lines[line - 1].rstrip("\r")
        return ""
