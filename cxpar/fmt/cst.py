"""The formatter's concrete syntax tree: Lark's parse tree of ``grammar/cx.lark`` with
every token kept, plus the comments, attached to the tokens around them.

The AST desugars (``x++``, ``is { … } { … }``, parentheses), so the formatter prints from
the parse tree of the same grammar instead; it has its own Lark instance, so collecting
comments costs `cxpar check` nothing.

Each comment is attached once (ruff's leading / trailing split, on tokens): a comment on
the same line after a token *trails* that token; any other comment *leads* the next
token (or the end of the file). The printer emits a token's leading comments before it
and its trailing comments after it, so a comment never crosses code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lark import Lark, Token, Tree

from cxpar.syntax.parser import grammar_text

COMMENT_TERMINALS = ("DOC_COMMENT", "LINE_COMMENT", "HASH_COMMENT", "BLOCK_COMMENT")
_OPENERS = "{(["


@dataclass(slots=True)
class Comment:
    """One comment and the layout around it in the source."""

    text: str
    start: int
    end: int
    #: A blank line separates it from the code or comment before it.
    blank_before: bool = False
    #: A line break follows it (always for ``//`` and ``#`` comments).
    newline_after: bool = False

    @property
    def is_line(self) -> bool:
        return not self.text.startswith("/*")


@dataclass
class Comments:
    """Comments keyed by the token they belong to (by source offsets)."""

    #: token start offset -> comments on their own lines before it
    leading: dict[int, list[Comment]] = field(default_factory=dict)
    #: token end offset -> comments after it on its line
    trailing: dict[int, list[Comment]] = field(default_factory=dict)
    #: token start offset -> a blank line separates its last leading comment from it
    blank_after_leading: set[int] = field(default_factory=set)
    #: comments after the last token
    at_end: list[Comment] = field(default_factory=list)
    total: int = 0


@dataclass
class Cst:
    """A parsed file: its text, its parse tree and its comments."""

    text: str
    tree: Tree[Token]
    comments: Comments


class CstParser:
    """The tree-building Lark parser; comments arrive through lexer callbacks."""

    def __init__(self) -> None:
        self._found: list[Token] = []
        self.lark = Lark(
            grammar_text(),
            parser="lalr",
            lexer="contextual",
            keep_all_tokens=True,
            maybe_placeholders=True,
            lexer_callbacks={name: self._found.append for name in COMMENT_TERMINALS},
            cache=True,
        )

    def parse(self, text: str) -> Cst:
        """Parse ``text`` (already known to be free of syntax errors)."""
        self._found.clear()
        tree = self.lark.parse(text)
        comments = attach(text, [(t.start_pos or 0, str(t)) for t in self._found])
        self._found.clear()
        return Cst(text, tree, comments)


def attach(text: str, found: list[tuple[int, str]]) -> Comments:
    """Attach comments ``(offset, text)`` (in source order) to the tokens around them.

    Whatever is not whitespace between two comments is code, so the neighbouring token
    offsets come from the text itself.
    """
    out = Comments(total=len(found))
    pending: list[Comment] = []
    last_end = 0              # end of the previous comment (or 0)
    prev_tok_end = -1         # end of the last token before the current comment (-1: none)
    trailing_open = False     # the previous comment trails prev_tok_end on its line
    for start, body in found:
        c = Comment(body, start, start + len(body))
        gap = text[last_end:start]
        stripped = gap.strip()
        if stripped:
            # Code between the previous comment and this one.
            tok_start = last_end + (len(gap) - len(gap.lstrip()))
            _flush(out, pending, text, tok_start, last_end)
            pending = []
            prev_tok_end = last_end + len(gap.rstrip())
            between = text[prev_tok_end:start]
            trailing_open = True
        else:
            between = gap
        if prev_tok_end >= 0 and trailing_open and "\n" not in between:
            out.trailing.setdefault(prev_tok_end, []).append(c)
        else:
            trailing_open = False
            after_opener = prev_tok_end > 0 and text[prev_tok_end - 1] in _OPENERS and not pending
            before = prev_tok_end >= 0 or last_end > 0
            c.blank_before = between.count("\n") >= 2 and before and not after_opener
            pending.append(c)
        if c.is_line:
            trailing_open = False
        last_end = c.end
    rest = text[last_end:]
    if rest.strip():
        tok_start = last_end + (len(rest) - len(rest.lstrip()))
        _flush(out, pending, text, tok_start, last_end)
    else:
        for c in pending:
            c.newline_after = True
        out.at_end = pending
    return out


def _flush(out: Comments, pending: list[Comment], text: str, tok_start: int,
           last_end: int) -> None:
    if not pending:
        return
    for i, c in enumerate(pending):
        nxt = pending[i + 1].start if i + 1 < len(pending) else tok_start
        c.newline_after = c.is_line or "\n" in text[c.end:nxt]
    out.leading[tok_start] = pending
    if text[last_end:tok_start].count("\n") >= 2 and text[tok_start] not in "})]":
        out.blank_after_leading.add(tok_start)


_PARSER: CstParser | None = None


def parse_cst(text: str) -> Cst:
    """Parse ``text`` with the shared formatter parser (built on first use)."""
    global _PARSER
    if _PARSER is None:
        _PARSER = CstParser()
    return _PARSER.parse(text)
