"""Every program in ``programs/`` (CX v1.0 style plus cxpar's additions) parses cleanly.

A few programs also have structural facts checked, so a parse that "succeeds" by
building the wrong tree is caught too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cxpar.ast import nodes as n
from cxpar.ast.visit import walk
from cxpar.span import SourceFile
from cxpar.syntax.parser import ParseResult, parse
from cxpar.syntax.source import decode

PROGRAMS = Path(__file__).parent / "programs"
FILES = sorted(PROGRAMS.glob("*.cx"))


def load(path: Path) -> ParseResult:
    src = decode(path.read_bytes(), path.name)
    assert isinstance(src, SourceFile), src
    return parse(src)


def program_of(name: str) -> n.Program:
    result = load(PROGRAMS / name)
    assert result.program is not None
    return result.program


def nodes_of(prog: n.Node, cls: type[n.Node]) -> list:
    return [x for x in walk(prog) if isinstance(x, cls)]


def test_corpus_is_large_enough() -> None:
    assert len(FILES) >= 35


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_program_parses(path: Path) -> None:
    result = load(path)
    errors = [f"{d.span}: {d.code} {d.message}" for d in result.diagnostics if d.is_error]
    assert errors == []
    assert result.program is not None
    assert result.program.body, "a corpus program is never empty"
    text = decode(path.read_bytes(), path.name)
    assert isinstance(text, SourceFile)
    lines = text.text.split("\n")
    for node in walk(result.program):
        s = node.span
        assert 1 <= s.line <= s.end_line <= len(lines), (type(node).__name__, s)
        assert s.col >= 1 and s.end_col >= 1


def test_entity_with_realize_and_handler() -> None:
    prog = program_of("01_conscious_realize.cx")
    ent = prog.body[0]
    assert isinstance(ent, n.EntityDecl)
    assert (ent.kind, ent.name.name, ent.base) == ("conscious", "Assistant", None)
    assert ent.doc == "An assistant that announces itself."
    assert ent.realize is not None
    assert [p.name.name for p in ent.realize.params] == ["self"]
    assert ent.realize.params[0].type is not None
    assert ent.realize.params[0].type.name == "conscious"
    learn, emit = ent.realize.body.body
    assert isinstance(learn, n.ExprStmt) and isinstance(learn.expr, n.ServiceCall)
    assert learn.expr.service.name == "learn"
    assert isinstance(learn.expr.arg, n.Name) and learn.expr.arg.id == "self"
    assert isinstance(emit, n.Emit) and emit.event.dotted == "assistant.ready"
    assert isinstance(emit.payload, n.Object)
    assert [p.key.name for p in emit.payload.props] == ["name"]
    assert [h.event.dotted for h in ent.handlers] == ["user.message"]
    handler = ent.handlers[0]
    assert handler.param is not None and handler.param.name.name == "event"


def test_bases() -> None:
    derived = program_of("02_object_extends.cx").body[1]
    assert isinstance(derived, n.EntityDecl)
    assert (derived.kind, derived.name.name) == ("object", "Derived")
    assert derived.base is not None and derived.base.name == "Base"
    deep = program_of("03_conscious_colon_base.cx").body[1]
    assert isinstance(deep, n.EntityDecl)
    assert deep.kind == "conscious" and deep.base is not None and deep.base.name == "Thinker"


def test_handlers_list_items_and_payloads() -> None:
    prog = program_of("04_handlers_payloads.cx")
    call = nodes_of(prog, n.ServiceCall)[0]
    assert call.service.name == "think"
    assert isinstance(call.arg, n.Object)
    handlers = next(p for p in call.arg.props if p.key.name == "handlers")
    assert isinstance(handlers.value, n.Array)
    first, second, third = handlers.value.items
    assert isinstance(first, n.Member)
    assert isinstance(second, n.EventPayload) and second.event.dotted == "ticket.logged"
    assert [p.key.name for p in second.payload.props] == ["level", "source"]
    assert isinstance(third, n.EventPayload) and third.event.dotted == "audit.write"
    assert third.payload.props[0].quoted and third.payload.props[0].key.name == "kind"


def test_parallel_handler_parameters() -> None:
    prog = program_of("05_parallel_params.cx")
    var = nodes_of(prog, n.VarDecl)[0]
    assert isinstance(var.init, n.ServiceCall)
    assert isinstance(var.init.arg, n.Object)
    props = {p.key.name: p.value for p in var.init.arg.props}
    assert list(props) == ["prompt", "sentiment", "topics", "summary", "timeout"]
    for key in ("sentiment", "topics", "summary"):
        value = props[key]
        assert isinstance(value, n.Member) and isinstance(value.obj, n.Name)
        assert value.obj.id == "analysis" and value.name.name == key
    handler = prog.body[0]
    assert isinstance(handler, n.OnHandler)
    assert handler.doc == "Three analyses in parallel, joined in one result payload."


def test_emit_forms_desugar_alike() -> None:
    prog = program_of("06_emit_forms.cx")
    emits = [s for s in prog.body if isinstance(s, n.Emit)]
    assert [e.event.dotted for e in emits] == ["a.b"] * 7
    assert emits[0].payload is None
    assert isinstance(emits[1].payload, n.Object)
    assert isinstance(emits[2].payload, n.Name) and isinstance(emits[3].payload, n.Name)
    assert isinstance(emits[4].payload, n.Object)
    assert isinstance(emits[5].payload, n.String)
    assert isinstance(emits[6].payload, n.Number) and emits[6].payload.value == 42


def test_keyword_event_parts() -> None:
    prog = program_of("07_keyword_event_parts.cx")
    ons = [s.event.dotted for s in prog.body if isinstance(s, n.OnHandler)]
    assert ons == ["system.ready", "ai.think.done", "new.user", "any.alert", "user.any.input",
                   "var.if.while", "return.break.continue.for.in", "this.true.false.null"]
    emits = [s.event.dotted for s in prog.body if isinstance(s, n.Emit)]
    assert emits == ["think.requested", "on.emit.realize", "conscious.object.extends"]


def test_doc_comments_join_lines() -> None:
    handler = program_of("08_comments.cx").body[0]
    assert isinstance(handler, n.OnHandler)
    assert handler.doc == "Doc comment for the handler.\nIt spans two lines."
    assert [type(s).__name__ for s in handler.body.body] == ["VarDecl", "VarDecl", "ExprStmt"]


def test_string_keys_and_trailing_commas() -> None:
    prog = program_of("10_string_keys_trailing_commas.cx")
    config = prog.body[0]
    assert isinstance(config, n.VarDecl) and isinstance(config.init, n.Object)
    assert [(p.key.name, p.quoted) for p in config.init.props] == [
        ("model", True), ("max-tokens", True), ("plain", False), ("nested", False)]
    call = prog.body[2]
    assert isinstance(call, n.ExprStmt) and isinstance(call.expr, n.Call)
    assert len(call.expr.args) == 2


def test_compound_assignment_ops_and_right_associativity() -> None:
    prog = program_of("12_compound_assign.cx")
    ops = [s.expr.op for s in prog.body
           if isinstance(s, n.ExprStmt) and isinstance(s.expr, n.Assign)]
    assert ops == ["+=", "-=", "*=", "/=", "+=", "*=", "="]
    chained = prog.body[-1]
    assert isinstance(chained, n.ExprStmt) and isinstance(chained.expr, n.Assign)
    assert isinstance(chained.expr.value, n.Assign)


def test_cxpar_control_flow() -> None:
    prog = program_of("16_if_else.cx")
    handler = prog.body[0]
    assert isinstance(handler, n.OnHandler)
    first = handler.body.body[0]
    assert isinstance(first, n.If) and isinstance(first.orelse, n.If)
    assert isinstance(first.orelse.orelse, n.Block)
    loop = program_of("17_while_break_continue.cx").body[1]
    assert isinstance(loop, n.While)
    assert nodes_of(loop, n.Break) and nodes_of(loop, n.Continue)
    fors = nodes_of(program_of("18_for_in.cx"), n.ForIn)
    assert [f.var.name for f in fors] == ["item", "key", "k"]
    rets = nodes_of(program_of("19_return.cx"), n.Return)
    assert [type(r.value).__name__ for r in rets] == ["Binary", "NoneType", "Object"]


def test_service_call_as_expression() -> None:
    prog = program_of("20_service_as_expression.cx")
    calls = nodes_of(prog, n.ServiceCall)
    assert sorted(c.service.name for c in calls) == ["infer", "think", "think", "think", "think"]


def test_typed_params() -> None:
    ent = program_of("21_typed_realize_params.cx").body[0]
    assert isinstance(ent, n.EntityDecl) and ent.realize is not None
    types = [(p.name.name, p.type.name if p.type else None) for p in ent.realize.params]
    assert types == [("self", "conscious"), ("tags", "array"), ("count", "number"),
                     ("label", "string"), ("flag", "boolean"), ("extra", "any"),
                     ("other", "object")]
    tags = ent.realize.params[1].type
    assert tags is not None and [a.name for a in tags.args] == ["string"]
    holder = program_of("21_typed_realize_params.cx").body[1]
    assert isinstance(holder, n.EntityDecl) and holder.realize is not None
    items, owner, names, plain = holder.realize.params
    assert items.type is not None and items.type.args[0].args[0].name == "number"
    assert names.type is not None and names.type.is_array
    assert plain.type is None


def test_on_async() -> None:
    prog = program_of("22_on_async.cx")
    top = prog.body[0]
    assert isinstance(top, n.OnHandler) and top.is_async
    assert top.event.dotted == "user.login"
    ent = prog.body[1]
    assert isinstance(ent, n.EntityDecl) and ent.handlers[0].is_async


def test_new_forms() -> None:
    news = nodes_of(program_of("23_new_forms.cx"), n.New)
    assert [len(x.args) for x in news] == [0, 1, 1, 2]
    assert isinstance(news[2].args[0], n.Object)


def test_precedence() -> None:
    prog = program_of("24_operators_precedence.cx")
    a = prog.body[0]
    assert isinstance(a, n.VarDecl) and isinstance(a.init, n.Binary)
    # 1 + 2 * 3 - 4 / 2 % 3  ==  (1 + (2 * 3)) - ((4 / 2) % 3)
    assert a.init.op == "-"
    left, right = a.init.left, a.init.right
    assert isinstance(left, n.Binary) and left.op == "+"
    assert isinstance(left.right, n.Binary) and left.right.op == "*"
    assert isinstance(right, n.Binary) and right.op == "%"
    assert isinstance(right.left, n.Binary) and right.left.op == "/"
    c = prog.body[2]
    assert isinstance(c, n.VarDecl) and isinstance(c.init, n.Binary)
    assert c.init.op == "||"
    assert isinstance(c.init.left, n.Binary) and c.init.left.op == "&&"


def test_unicode_string_values() -> None:
    prog = program_of("25_unicode_strings.cx")
    strings = [s.value for s in nodes_of(prog, n.String)]
    assert "🎯 Target met: ✅" in strings
    assert 'escapes: " \\ / \n \t \r é ☃' in strings


def test_handler_without_parameter() -> None:
    prog = program_of("27_handler_no_param.cx")
    a, b = prog.body[0], prog.body[1]
    assert isinstance(a, n.OnHandler) and a.param is None
    assert isinstance(b, n.OnHandler) and b.param is None


def test_keywords_as_member_names_and_keys() -> None:
    prog = program_of("29_member_keywords.cx")
    members = {m.name.name for m in nodes_of(prog, n.Member)}
    assert {"new", "any", "system", "think"} <= members
    obj = nodes_of(prog, n.Object)[0]
    assert [p.key.name for p in obj.props] == ["new", "any", "system", "think", "emit", "on",
                                              "object"]


def test_crlf_and_tabs_programs() -> None:
    prog = program_of("37_crlf.cx")
    emit = prog.body[1]
    assert isinstance(emit, n.Emit) and emit.span.line == 4 and emit.span.col == 1
    tabbed = program_of("36_crlf_tabs.cx").body[0]
    assert isinstance(tabbed, n.OnHandler) and tabbed.event.dotted == "tabbed.event"
    assert tabbed.event.span.col == 4  # a tab is one code point


# ------------------------------------------------------------- the corpus as a whole

#: Grammar terminals that only appear in programs with errors (CX116: `let`/`const`).
ERROR_ONLY = {"LET", "CONST"}


def test_corpus_covers_every_construct() -> None:
    """Every rule and terminal of the grammar, and every AST node type, occurs in some
    corpus program: the corpus is the project's own CX covering the whole language."""
    from lark import Lark, Token

    from cxpar.syntax.parser import grammar_text

    lark = Lark(grammar_text(), parser="lalr", lexer="contextual", keep_all_tokens=True,
                lexer_callbacks={"DOC_COMMENT": _seen_comment, "LINE_COMMENT": _seen_comment,
                                 "HASH_COMMENT": _seen_comment,
                                 "BLOCK_COMMENT": _seen_comment})
    rules = {str(r.alias or r.origin.name) for r in lark.rules
             if not (r.options.expand1 or str(r.alias or r.origin.name).startswith("_"))}
    terminals = {t.name for t in lark.terminals} - ERROR_ONLY - {"WS"}
    seen: set[str] = set()
    node_types: set[str] = set()
    for path in FILES:
        src = decode(path.read_bytes(), path.name)
        assert isinstance(src, SourceFile)
        tree = lark.parse(src.text)
        seen |= {sub.data for sub in tree.iter_subtrees()}
        seen |= {tok.type for tok in tree.scan_values(lambda v: isinstance(v, Token))}
        node_types |= {type(x).__name__ for x in walk(load(path).program)}  # type: ignore[arg-type]
    seen |= _COMMENTS
    assert rules - seen == set()
    assert terminals - seen == set()
    all_nodes = {c.__name__ for c in _subclasses(n.Node)} - {"Node", "Expr", "Stmt"}
    assert all_nodes - node_types == set()


_COMMENTS: set[str] = set()


def _seen_comment(tok: Any) -> Any:
    _COMMENTS.add(tok.type)
    return tok


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    for sub in cls.__subclasses__():
        out += _subclasses(sub)
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_program_checks_and_runs(path: Path) -> None:
    """The corpus is valid CX: no error diagnostics, and it runs to the end (exit 0)."""
    from tests.semantics.conftest import run_cx

    src = decode(path.read_bytes(), path.name)
    assert isinstance(src, SourceFile)
    r = run_cx(src.text, path.name)
    assert r.code == 0, r.err
    assert "internal error" not in r.err
