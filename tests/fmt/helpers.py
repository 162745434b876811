"""The formatter's guarantees as reusable checks (issue 21), used on every example, our
own CX programs and hypothesis-generated ones."""

from __future__ import annotations

import bisect
from dataclasses import fields
from typing import Any

from lark import Token

from cxpar.ast.nodes import Node
from cxpar.fmt import format_source
from cxpar.fmt.cst import parse_cst
from cxpar.syntax.parser import parse_text


def ast_shape(text: str) -> Any:
    """The AST of ``text`` with spans left out (literals keep their source text, doc
    comments and `async` markers are fields)."""
    result = parse_text(text, "t.cx")
    assert result.ok, [d.message for d in result.diagnostics]
    assert result.program is not None
    return _shape(result.program)


def _shape(value: Any) -> Any:
    if isinstance(value, Node):
        return (type(value).__name__,) + tuple(
            (f.name, _shape(getattr(value, f.name))) for f in fields(value)  # type: ignore[arg-type]
            if f.name != "span")
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def placed_comments(text: str) -> list[tuple[int, str]]:
    """Each comment with the number of code tokens before it (commas not counted: the
    style adds and drops trailing commas). Equal lists mean no comment crossed code."""
    cst = parse_cst(text)
    starts = sorted(t.start_pos or 0 for t in cst.tree.scan_values(
        lambda v: isinstance(v, Token) and v.type != "COMMA"))
    found: list[tuple[int, str]] = []
    for group in (cst.comments.leading, cst.comments.trailing):
        for comments in group.values():
            found.extend((bisect.bisect_left(starts, c.start), _clean(c.text)) for c in comments)
    found.extend((len(starts), _clean(c.text)) for c in cst.comments.at_end)
    assert len(found) == cst.comments.total
    return sorted(found)


def _clean(comment: str) -> str:
    return comment.rstrip() if not comment.startswith("/*") else comment


def check_guarantees(text: str) -> str:
    """Format ``text`` and assert every guarantee; returns the formatted text."""
    out = format_source(text)
    assert ast_shape(out) == ast_shape(text), "the AST changed"
    assert placed_comments(out) == placed_comments(text), "a comment was lost or moved"
    again = format_source(out)
    assert again == out, "formatting is not idempotent"
    assert all(len(line) == len(line.rstrip()) for line in out.split("\n")), "trailing spaces"
    return out
