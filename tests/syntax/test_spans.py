"""AST and diagnostic positions (pycparser's ``assert_coord``): a blank first line,
tabs, CRLF and non-ASCII text all keep lines and code-point columns right."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxpar.ast import nodes as n
from cxpar.ast.visit import walk
from cxpar.span import SourceFile, Span
from cxpar.syntax.parser import parse, parse_text
from cxpar.syntax.source import decode

from .helpers import first_error, ok

PROGRAMS = sorted((Path(__file__).parent / "programs").glob("*.cx"))


def coord(span: Span) -> tuple[int, int, int, int]:
    return (span.line, span.col, span.end_line, span.end_col)


def assert_offsets_agree(text: str, node: n.Node) -> None:
    """line/col and start/end offsets of every node describe the same region."""
    for x in walk(node):
        s = x.span
        for off, line, col in ((s.start, s.line, s.col), (s.end, s.end_line, s.end_col)):
            assert text.count("\n", 0, off) + 1 == line, (type(x).__name__, s)
            assert off - (text.rfind("\n", 0, off) + 1) + 1 == col, (type(x).__name__, s)


SOURCE = '''
conscious Greeter : Base {
    realize(self: conscious) {
        learn self;
    }
    on user.hello (event) {
        emit greet.done { to: event.name };
    }
}
var total = 1 + 2 * 3;
'''


def test_spans_with_blank_first_line() -> None:
    prog = ok(SOURCE)
    assert coord(prog.span)[:2] == (2, 1)
    ent = prog.body[0]
    assert isinstance(ent, n.EntityDecl)
    assert coord(ent.span) == (2, 1, 9, 2)
    assert coord(ent.name.span) == (2, 11, 2, 18)
    assert ent.base is not None and coord(ent.base.span) == (2, 21, 2, 25)
    assert ent.realize is not None
    assert coord(ent.realize.span) == (3, 5, 5, 6)
    assert coord(ent.realize.params[0].span) == (3, 13, 3, 28)
    learn = ent.realize.body.body[0]
    assert coord(learn.span) == (4, 9, 4, 20)
    handler = ent.handlers[0]
    assert coord(handler.span) == (6, 5, 8, 6)
    assert coord(handler.event.span) == (6, 8, 6, 18)
    emit = handler.body.body[0]
    assert isinstance(emit, n.Emit)
    assert coord(emit.span) == (7, 9, 7, 44)
    assert coord(emit.event.span) == (7, 14, 7, 24)
    assert emit.payload is not None and coord(emit.payload.span) == (7, 25, 7, 43)
    total = prog.body[1]
    assert isinstance(total, n.VarDecl) and isinstance(total.init, n.Binary)
    assert coord(total.span) == (10, 1, 10, 23)
    assert coord(total.init.span) == (10, 13, 10, 22)
    assert coord(total.init.right.span) == (10, 17, 10, 22)
    assert_offsets_agree(SOURCE, prog)


def test_spans_of_payload_items() -> None:
    text = "\nthink {\n  handlers: [ a.b, c.d { k: 1 } ],\n  x: p.q\n};\n"
    prog = ok(text)
    item = next(x for x in walk(prog) if isinstance(x, n.EventPayload))
    assert coord(item.span) == (3, 20, 3, 32)
    assert coord(item.event.span) == (3, 20, 3, 23)
    assert coord(item.payload.span) == (3, 24, 3, 32)
    assert_offsets_agree(text, prog)


@pytest.mark.parametrize("path", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_corpus_offsets_agree(path: Path) -> None:
    src = decode(path.read_bytes(), path.name)
    assert isinstance(src, SourceFile)
    result = parse(src)
    assert result.program is not None
    assert_offsets_agree(src.text, result.program)


def test_tabs_count_as_one_column() -> None:
    text = "on\ta.b\t(e)\t{\n\t\temit\tx.y;\n}\n"
    prog = ok(text)
    h = prog.body[0]
    assert isinstance(h, n.OnHandler)
    assert coord(h.event.span) == (1, 4, 1, 7)
    assert coord(h.body.body[0].span) == (2, 3, 2, 12)
    first_error("\tvar x = 1\n\t\tprint(x);", "CX102", 2, 3, 8, "`print`")


def test_crlf_keeps_lines_and_columns() -> None:
    raw = b"var x = 1;\r\n\r\non a.b (e) {\r\n    emit c.d;\r\n}\r\nvar y = 2\r\nprint(y);\r\n"
    src = decode(raw, "crlf.cx")
    assert isinstance(src, SourceFile) and "\r" not in src.text
    result = parse(src)
    assert result.program is not None
    h = result.program.body[1]
    assert isinstance(h, n.OnHandler)
    assert coord(h.span) == (3, 1, 5, 2)
    assert coord(h.body.body[0].span) == (4, 5, 4, 14)
    [d] = result.diagnostics
    assert (d.code, coord(d.span)) == ("CX102", (7, 1, 7, 6))
    assert d.labels[0].span.line == 6 and d.labels[0].span.col == 10


def test_lone_cr_is_a_line_break() -> None:
    src = decode(b"var x = 1;\rvar y = ;\r", "cr.cx")
    assert isinstance(src, SourceFile)
    [d] = parse(src).diagnostics
    assert (d.code, coord(d.span)) == ("CX101", (2, 9, 2, 10))


def test_bom_is_dropped() -> None:
    src = decode("\ufeffvar x = ;".encode(), "bom.cx")
    assert isinstance(src, SourceFile)
    [d] = parse(src).diagnostics
    assert coord(d.span) == (1, 9, 1, 10)


def test_columns_count_code_points() -> None:
    # 🎯 is one code point (two UTF-16 units, four UTF-8 bytes): `)` is at column 15.
    d = first_error('print("🎯" + );', "CX101", 1, 13, 14, "`)`")
    assert d.span.start == 12
    first_error('var s = "日本語"\nvar t = 1;', "CX102", 2, 1, 4, "`var`")
    first_error('var s = "é🧠x" @;', "CX103", 1, 15, 16)
    prog = ok('var s = "🧠🤖"; var t = s;')
    t = prog.body[1]
    assert isinstance(t, n.VarDecl) and coord(t.span) == (1, 15, 1, 25)


def test_combining_and_astral_characters_in_strings() -> None:
    text = 'print("e\u0301" + "𝔘𝔫𝔦");\nvar x = ;'
    first_error(text, "CX101", 2, 9, 10, "`;`")
    result = parse_text(text)
    assert result.program is None or isinstance(result.program, n.Program)


def test_unterminated_string_span_stops_at_line_end() -> None:
    first_error('var s = "🎯abc\nvar t = 1;', "CX104", 1, 9, 14)


def test_error_at_end_of_file_without_newline() -> None:
    first_error("var x = 1", "CX102", 1, 10, 11, "end of file")
    first_error("var x = 1\n\n\n", "CX102", 1, 10, 11, "end of file")
