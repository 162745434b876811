"""Per construct: one program that parses and one that is rejected with a precise span.

Rule 32: 1-based line/col in code points, end_col exclusive; a syntax error points at
the unexpected token, with a "missing `;`" hint (CX102) when `;` would fit before it.
"""

from __future__ import annotations

import pytest

from cxpar.ast import nodes as n
from cxpar.syntax.parser import parse_text

from .helpers import diags, first_error, ok

# ------------------------------------------------------------------- statements


def test_var() -> None:
    ok("var x = 1; var y; var z: number = 2;")
    first_error("var = 1;", "CX101", 1, 5, 6, "`=`")


def test_missing_semicolon_points_at_next_token() -> None:
    d = first_error("var x = 1\nprint(x);\n", "CX102", 2, 1, 6, "`print`")
    assert d.message == "expected `;`, found `print`"
    assert d.help == "add `;` after `1` on line 1"
    assert [(lab.span.line, lab.span.col, lab.message) for lab in d.labels] == [
        (1, 10, "add `;` here")]


def test_missing_semicolon_same_line_and_before_brace() -> None:
    first_error("var x = 1 print(x);", "CX102", 1, 11, 16, "`print`")
    first_error("while (a) { break }", "CX102", 1, 19, 20, "`}`")
    first_error("emit a.b { k: 1 }\nemit c.d;", "CX102", 2, 1, 5, "`emit`")


def test_missing_semicolon_at_end_of_file() -> None:
    d = first_error("print(1)", "CX102", 1, 9, 10, "end of file")
    assert d.help == "add `;` after `print(1)` on line 1"


def test_missing_semicolon_skips_trailing_comment() -> None:
    d = first_error("var x = 1 // one\n\nvar y = 2;", "CX102", 3, 1, 4, "`var`")
    assert d.labels[0].span.line == 1 and d.labels[0].span.col == 10


def test_recovery_reports_independent_errors() -> None:
    ds = diags("var a = 1\nvar b = ;\nvar c = 3\nprint(a);\n")
    assert [(d.code, d.span.line) for d in ds] == [("CX102", 2), ("CX101", 2), ("CX102", 4)]


def test_expression_statement() -> None:
    ok("f(1); a.b.c; a[0]; x = 1;")
    first_error("var x = 1 + ;", "CX101", 1, 13, 14, "`;`")


def test_block() -> None:
    ok("{ } { var a = 1; { a = 2; } }")
    first_error("{ var a = 1; ", "CX107", 1, 1, 2)


def test_emit() -> None:
    prog = ok("emit a.b; emit a.b { k: 1 }; emit a.b x; emit a.b, x;")
    assert all(isinstance(s, n.Emit) for s in prog.body)
    first_error("emit;", "CX101", 1, 5, 6, "`;`")
    first_error('emit "a.b";', "CX101", 1, 6, 11, 'string "a.b"')
    first_error("emit a..b;", "CX101", 1, 8, 9, "`.`")


def test_if_else() -> None:
    ok("if (a) b(); else if (c) { } else { }")
    first_error("if x { }", "CX101", 1, 4, 5, "`x`")
    first_error("if (a) { } else { } else { }", "CX101", 1, 21, 25, "`else`")


def test_while() -> None:
    ok("while (i < 3) i += 1;")
    first_error("while () { }", "CX101", 1, 8, 9, "`)`")


def test_for_in() -> None:
    ok("for (var x in xs) { } for (y in ys) print(y);")
    first_error("for (var x of xs) { }", "CX101", 1, 12, 14, "`of`")


def test_break_continue() -> None:
    ok("while (true) { break; continue; }")
    first_error("while (a) { continue }", "CX102", 1, 22, 23, "`}`")


def test_return() -> None:
    ok("on a.b (e) { return; } on c.d (e) { return { k: 1 }; }")
    first_error("on a.b (e) { return 1 2; }", "CX102", 1, 23, 24, "`2`")


def test_empty_statement() -> None:
    prog = ok(";;")
    assert [type(s) for s in prog.body] == [n.Empty, n.Empty]


def test_statement_starting_with_brace() -> None:
    # `{ k: v }` at statement start is an object literal; `{}` and `{ stmt }` are blocks.
    from cxpar.ast import nodes as n
    from cxpar.syntax.parser import parse_text

    prog = parse_text("{ a: 1 }.a; {} { print(1); }").program
    assert prog is not None
    kinds = [type(s).__name__ for s in prog.body]
    assert kinds == ["ExprStmt", "Block", "Block"]
    first = prog.body[0]
    assert isinstance(first, n.ExprStmt) and isinstance(first.expr, n.Member)


# ----------------------------------------------------------------- declarations


def test_conscious() -> None:
    ok("conscious A { realize(self: conscious) { learn self; } on a.b (e) { } }")
    first_error("conscious { }", "CX101", 1, 11, 12, "`{`")


def test_conscious_base() -> None:
    ok("conscious B : A { }")
    first_error("conscious B : { }", "CX101", 1, 15, 16, "`{`")


def test_object_extends() -> None:
    ok("object B extends A { }")
    first_error("object B extends { }", "CX101", 1, 18, 19, "`{`")


def test_entity_members() -> None:
    ok("object A { ; realize() { } ; on x.y { } }")
    first_error("conscious A { var x = 1; }", "CX101", 1, 15, 18, "`var`")


def test_duplicate_realize() -> None:
    d = first_error("conscious A { realize() { } realize() { } }", "CX110", 1, 29, 42)
    assert d.message == "an entity has at most one `realize`"


def test_realize_params() -> None:
    prog = ok("object A { realize(a, b: string, c: array<number>, d: T[], e: any,) { } }")
    ent = prog.body[0]
    assert isinstance(ent, n.EntityDecl) and ent.realize is not None
    assert [p.name.name for p in ent.realize.params] == ["a", "b", "c", "d", "e"]
    first_error("conscious A { realize(1) { } }", "CX101", 1, 23, 24, "`1`")
    first_error("conscious A { realize(x: array<) { } }", "CX101", 1, 32, 33, "`)`")


def test_on_handler() -> None:
    ok("on a (e) { } on a.b.c (e) { } on x.y { } on x.z () { }")
    first_error("on (e) { }", "CX101", 1, 4, 5, "`(`")
    first_error("on a.b (e);", "CX101", 1, 11, 12, "`;`")


def test_on_async_and_unknown_modifier() -> None:
    prog = ok("on async a.b (e) { }")
    h = prog.body[0]
    assert isinstance(h, n.OnHandler) and h.is_async
    d = first_error("on later a.b (e) { }", "CX111", 1, 4, 9)
    assert d.message == "unknown handler modifier `later`"


@pytest.mark.parametrize("part", ["system", "new", "any", "think", "on", "emit", "var", "if",
                                  "realize", "conscious", "object", "this", "true", "null",
                                  "return", "for", "in", "while", "extends", "async"])
def test_keyword_as_event_part(part: str) -> None:
    prog = ok(f"on {part}.x (e) {{ emit x.{part}; emit {part}.y.{part}; }}")
    h = prog.body[0]
    assert isinstance(h, n.OnHandler) and h.event.parts == [part, "x"]


# ------------------------------------------------------------------ expressions


def test_object_literal() -> None:
    ok('var o = { a: 1, "b c": 2, d: { e: [] }, };')
    first_error("var o = { a 1 };", "CX101", 1, 13, 14, "`1`")
    d = first_error("var o = { a: 1 b: 2 };", "CX115", 1, 16, 17, "`b`")
    assert len(diags("var o = { a: 1 b: 2 };")) == 1 and d.help == "add `,` after `1` on line 1"
    first_error("var o = { : 1 };", "CX101", 1, 11, 12, "`:`")


def test_array_literal() -> None:
    ok("var a = [1, [2, 3], { k: 4 }, \"s\",];")
    first_error("var a = [1 2];", "CX115", 1, 12, 13, "`2`")
    first_error("var a = [,];", "CX101", 1, 10, 11, "`,`")


def test_member_index_call() -> None:
    ok("a.b[c](d).e(f, g,)[0];")
    first_error("a.;", "CX101", 1, 3, 4, "`;`")
    first_error("a[];", "CX101", 1, 3, 4, "`]`")


def test_new() -> None:
    ok("var a = new A(); var b = new A(1, 2); var c = new A { k: 1 };")
    first_error("var a = new A(;", "CX101", 1, 15, 16, "`;`")


def test_unary_binary() -> None:
    ok("var x = -a + +b * !c / 2 % 3 - (a < b) + (a >= b) + (a != b) + (a == b && c || d);")
    first_error("var x = a * ;", "CX101", 1, 13, 14, "`;`")
    first_error("var x = a && || b;", "CX101", 1, 14, 16, "`||`")


def test_equality_is_one_token() -> None:
    """`==` once lexed as two `=` (ASSIGN_OP's `=` was tried before EQ_OP)."""
    prog = ok('if (a.b == "x") { } var q = a == 1; var r = a != b;')
    binaries = [e for s in prog.body[1:] if isinstance(s, n.VarDecl)
                for e in [s.init] if isinstance(e, n.Binary)]
    assert [b.op for b in binaries] == ["==", "!="]


def test_compound_assignment() -> None:
    prog = ok("x += 1; o.k -= 2; a[0] *= 3; y /= 4; z = w = 5;")
    ops = [s.expr.op for s in prog.body if isinstance(s, n.ExprStmt)
           and isinstance(s.expr, n.Assign)]
    assert ops == ["+=", "-=", "*=", "/=", "="]
    first_error("x += ;", "CX101", 1, 6, 7, "`;`")


def test_this() -> None:
    prog = ok("conscious A { on a.b (e) { this.x = e; print(this); } }")
    assert any(isinstance(x, n.This) for x in _walk(prog))
    first_error("this = ;", "CX101", 1, 8, 9, "`;`")


def test_service_calls() -> None:
    prog = ok("learn self; think { prompt: p }; var r = think { prompt: p }; "
              "await { durationMs: 100 }; iam { }; adapt { }; infer { }; execute { }; "
              "is { condition: true }; not { condition: false }; thnk { };")
    calls = [x for x in _walk(prog) if isinstance(x, n.ServiceCall)]
    assert [c.service.name for c in calls] == ["learn", "think", "think", "await", "iam",
                                               "adapt", "infer", "execute", "is", "not",
                                               "thnk"]
    first_error("think { prompt: };", "CX101", 1, 17, 18, "`}`")


def test_service_name_followed_by_paren_is_a_call() -> None:
    prog = ok("think(1); var think = 2; think += 1;")
    first = prog.body[0]
    assert isinstance(first, n.ExprStmt) and isinstance(first.expr, n.Call)


def test_handlers_items_and_branches() -> None:
    prog = ok("think { handlers: [ a.b, c.d { k: 1 }, e.f.g { } ], x: p.q, y: r.s.t };")
    payloads = [x for x in _walk(prog) if isinstance(x, n.EventPayload)]
    assert [p.event.dotted for p in payloads] == ["c.d", "e.f.g"]
    first_error("think { handlers: [ a.b { k } ] };", "CX101", 1, 29, 30, "`}`")


def test_payload_on_non_event() -> None:
    d = first_error("think { handlers: [ f(x).a { k: 1 } ] };", "CX112", 1, 21, 25)
    assert d.message == "only an event name can take a payload here"


# --------------------------------------------------------------------- lexing


def test_strings_and_escapes() -> None:
    prog = ok(r'var s = "a\"b\\c\/d\ne\tf\rg\u00e9h";')
    s = prog.body[0]
    assert isinstance(s, n.VarDecl) and isinstance(s.init, n.String)
    assert s.init.value == 'a"b\\c/d\ne\tf\rgéh'


def test_unterminated_string() -> None:
    d = first_error('print("abc);\nprint(1);', "CX104", 1, 7, 13)
    assert d.message == "unterminated string"


def test_raw_newline_in_string() -> None:
    first_error('print("a\nb");', "CX104", 1, 7, 9)


@pytest.mark.parametrize("escape,char", [(r"\q", "q"), (r"\d", "d"), (r"\$", "$"),
                                         (r"\%", "%")])
def test_unknown_escape_is_the_character_with_a_warning(escape: str, char: str) -> None:
    """Rule 31: CX v1.0 lexes a backslash before any character."""
    ds = diags(f'print("ab{escape}c");')
    assert [(d.code, d.severity.value, d.span.col, d.span.end_col) for d in ds] == [
        ("CX113", "warning", 10, 12)]
    assert ds[0].message == f"unknown escape `{escape}` means `{char}`"
    prog = parse_text(f'print("ab{escape}c");', "t.cx").program
    assert prog is not None
    assert [x.value for x in _walk(prog) if isinstance(x, n.String)] == [f"ab{char}c"]


@pytest.mark.parametrize("literal,value", [
    (r'"\x1b[2J\x1b[H"', "\x1b[2J\x1b[H"), (r'"\b\f\v\a\0"', "\b\f\v\a\0"),
    (r'"it\'s"', "it's"), (r'"\x41\x7e\xFF"', "A~\xff"), (r'"\u00e9\/\"\\"', 'é/"\\'),
    (r'"\ud83c\udfaf!"', "🎯!"), (r'"\uD83C\uDFAF"', "🎯"), (r'"\n\t\r"', "\n\t\r"),
])
def test_escapes(literal: str, value: str) -> None:
    prog = ok(f"var s = {literal}; var o = {{ {literal}: 1 }};")
    strings = [x for x in _walk(prog) if isinstance(x, n.String)]
    keys = [x for x in _walk(prog) if isinstance(x, n.Prop)]
    assert strings[0].value == value and keys[0].key.name == value


@pytest.mark.parametrize("text,col,end_col,message", [
    (r'print("\u12G4");', 8, 10, "invalid `\\u` escape in string"),
    (r'print("\xZ1");', 8, 10, "invalid `\\x` escape in string"),
    (r'print("a\x4");', 9, 11, "invalid `\\x` escape in string"),
    (r'print("\ud800");', 8, 14, "lone surrogate `\\ud800` in string"),
    (r'print("\udfaf\ud83c");', 8, 14, "lone surrogate `\\udfaf` in string"),
    (r'var o = { "\ud83c": 1 };', 12, 18, "lone surrogate `\\ud83c` in string"),
])
def test_bad_escape_is_an_error_with_a_span(text: str, col: int, end_col: int,
                                            message: str) -> None:
    d = first_error(text, "CX105", 1, col, end_col)
    assert d.message == message


def test_unterminated_comment() -> None:
    d = first_error("print(1);\n/* never\n closed\n", "CX106", 2, 1, 3)
    assert d.message == "unterminated block comment"


@pytest.mark.parametrize("text,col", [("var x = 1 /* open", 11), ("print(1); /* open", 11),
                                      ("/*", 1), ("x = y/*", 6)])
def test_unterminated_comment_anywhere(text: str, col: int) -> None:
    """After an operand the lexer used to see `/` as division and report CX101."""
    first_error(text, "CX106", 1, col, col + 2)


def test_comments_are_ignored() -> None:
    ok("/// doc\n// line\n/* block */ var x = /* inline */ 1; /* a\nb */ /**/")


def test_unclosed_brace_points_at_opening() -> None:
    d = first_error('on a.b (e) {\n    print("hi");\n', "CX107", 1, 12, 13)
    assert d.message == "unclosed `{`: the file ended before its `}`"
    assert d.labels and d.labels[0].message == "file ends here"


def test_unclosed_bracket_and_paren_at_eof() -> None:
    first_error("var a = [1, 2", "CX107", 1, 9, 10)
    first_error("print((1)", "CX107", 1, 6, 7)


@pytest.mark.parametrize("ch", ["@", "`", "~", "^", "\\"])
def test_unexpected_character(ch: str) -> None:
    d = first_error(f"var x = 1 {ch} 2;", "CX103", 1, 11, 12)
    assert d.message == (f"unexpected character `{ch}`" if ch != "`" else "unexpected character `` ` ``")


def test_single_quotes() -> None:
    d = first_error("print('hi');", "CX103", 1, 7, 11)
    assert d.message == "strings use double quotes"


def test_nesting_limit() -> None:
    ok("var x = " + "(" * 200 + "1" + ")" * 200 + ";")
    d = first_error("var x = " + "(" * 300 + "1" + ")" * 300 + ";", "CX108", 1, 265, 266)
    assert d.message == "nesting too deep (more than 256 levels)"
    first_error("{" * 300 + "}" * 300, "CX108", 1, 257, 258)
    first_error("var x = " + "[" * 300 + "]" * 300 + ";", "CX108", 1, 265, 266)


def test_numbers() -> None:
    prog = ok("var a = 12; var b = 3.5; var c = 0.25;")
    values = [s.init.value for s in prog.body if isinstance(s, n.VarDecl)
              and isinstance(s.init, n.Number)]
    assert values == [12, 3.5, 0.25]
    first_error("var x = 1.;", "CX101", 1, 11, 12, "`;`")


def _walk(prog: n.Program) -> list[n.Node]:
    from cxpar.ast.visit import walk

    return walk(prog)


@pytest.mark.parametrize("text,code", [
    ('print("open);\nprint("next");\nvar x = 1;', "CX104"),
    ('var x = "a\\ud800b" + 1;\nvar y = 2;', "CX105"),
    ("print('s' + x);\nvar y = 2;", "CX103"),
])
def test_broken_string_causes_no_cascade(text: str, code: str) -> None:
    assert [d.code for d in diags(text)] == [code]
