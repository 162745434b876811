"""Pass `resolve`: name classification, scopes and CX2xx diagnostics."""

from __future__ import annotations

import pytest

from cxpar.analysis.model import NameKind
from cxpar.ast import nodes as n
from cxpar.ast.visit import walk
from tests.analysis.helpers import at, codes, compile_text, errors, one


def kinds(text: str) -> dict[str, set[NameKind]]:
    """Name/This id -> kinds found, plus dotted Member chains."""
    comp = compile_text(text)
    out: dict[str, set[NameKind]] = {}
    for node in walk(comp.program):
        if isinstance(node, (n.Name, n.This, n.Member)):
            ref = comp.info.ref(node)
            assert ref is not None, node
            key = node.id if isinstance(node, n.Name) else (
                "this" if isinstance(node, n.This) else ref.name)
            out.setdefault(key, set()).add(ref.kind)
    return out


def test_classification_of_every_kind() -> None:
    k = kinds("""
var g = 1;
conscious Agent {
    realize(self: conscious) { learn self; var x = g; print(this.name); }
    on a.b (event) {
        var y = event.payload.x;
        think { prompt: y, r: r.event, handlers: [ done.ok ] };
    }
}
on done.ok (e) { print(len(e)); }
on r.event (e) { return 1; }
var a = new Agent({ name: "n" });
print(Agent);
""")
    assert k["g"] == {NameKind.GLOBAL}
    assert k["self"] == {NameKind.PARAM}
    assert k["this"] == {NameKind.SELF}
    assert k["event"] == {NameKind.PARAM}
    assert k["y"] == {NameKind.LOCAL}
    assert k["print"] == {NameKind.BUILTIN}
    assert k["Agent"] == {NameKind.ENTITY}
    assert NameKind.EVENT in k["r.event"]
    assert NameKind.EVENT in k["done.ok"]
    assert k["x"] == {NameKind.PROPERTY}


def test_self_in_entity_handler_is_self() -> None:
    k = kinds("conscious A { on a.b (event) { print(self.name); } }")
    assert k["self"] == {NameKind.SELF}
    assert k["name"] == {NameKind.PROPERTY}


def test_globals_visible_before_declaration_and_in_handlers() -> None:
    comp = compile_text("on a.b (e) { total = total + 1; }\nvar total = 0;\nemit a.b;")
    assert not [d for d in comp.diagnostics if d.is_error]
    assert set(comp.info.globals) == {"total"}


def test_block_scoped_locals_get_unique_names() -> None:
    comp = compile_text("""
var x = 0;
on a.b (e) {
    { var x = 1; print(x); }
    { var x = 2; print(x); }
    print(x);
}
emit a.b;
""")
    assert not errors(comp.source.text)
    h = comp.info.handlers[0]
    locals_ = comp.info.function_locals[id(h.node)]
    uniques = [b.unique for b in locals_ if b.name == "x"]
    assert len(uniques) == 2 and len(set(uniques)) == 2 and "x" not in uniques
    last_print = [nd for nd in walk(h.node) if isinstance(nd, n.Name) and nd.id == "x"][-1]
    ref = comp.info.ref(last_print)
    assert ref is not None and ref.kind is NameKind.GLOBAL


def test_implicit_event_parameter() -> None:
    comp = compile_text("on a.b { print(event.x); }\nemit a.b;")
    assert not [d for d in comp.diagnostics if d.is_error]
    assert comp.info.handlers[0].param is not None
    assert comp.info.handlers[0].param.name == "event"


def test_unknown_name_with_suggestion() -> None:
    d = one("var count = 1;\nprint(cout);", "CX201")
    assert at(d) == (2, 7, 2, 11)
    assert d.message == "unknown name `cout`"
    assert d.help == "did you mean `count`?"


def test_unknown_function() -> None:
    d = one("foo(1);", "CX201")
    assert d.message == "unknown function `foo`" and at(d) == (1, 1, 1, 4)


def test_event_reference_used_as_value() -> None:
    d = one("var x = order.created;", "CX202")
    assert at(d) == (1, 9, 1, 22)
    assert "event reference `order.created` used as a value" == d.message


def test_event_reference_in_nested_literal_is_error() -> None:
    assert "CX202" in codes("think { prompt: \"p\", data: { x: a.b } };")


def test_dotted_host_call_is_an_error() -> None:
    """Issue 15: a call that can only fail at run time is an error, not a warning."""
    d = one("var t = Date.now();", "CX205")
    assert d.is_error and at(d) == (1, 9, 1, 17) and d.help and "`now()`" in d.help
    d = one("var u = other.thing();", "CX205")
    assert d.is_error and d.message == "unknown function `other.thing`"


def test_redeclaration_in_one_block() -> None:
    d = one("var x = 1;\nvar x = 2;", "CX203")
    assert at(d) == (2, 5, 2, 6)
    d = one("on a.b (e) { var y = 1; var y = 2; }", "CX203")
    assert at(d) == (1, 29, 1, 30)


def test_shadowing_in_inner_block_is_fine() -> None:
    assert "CX203" not in codes("on a.b (e) { var y = 1; if (y) { var y = 2; } }")


def test_assignment_to_undeclared() -> None:
    d = one("on a.b (e) { counter = 1; }", "CX204")
    assert at(d) == (1, 14, 1, 21)


@pytest.mark.parametrize("word", ["self", "this"])
def test_self_outside_entity(word: str) -> None:
    d = one(f"on a.b (e) {{ print({word}.name); }}", "CX206")
    assert at(d) == (1, 20, 1, 20 + len(word))


def test_self_param_in_realize_is_fine() -> None:
    assert not errors("conscious A { realize(self: conscious) { learn self; } }")


def test_top_level_return() -> None:
    d = one("return 1;", "CX207")
    assert at(d) == (1, 1, 1, 10)
    assert "CX207" not in codes("on a.b (e) { return 1; }")


def test_break_outside_loop() -> None:
    d = one("on a.b (e) { break; }", "CX208")
    assert at(d) == (1, 14, 1, 20)
    assert "CX208" not in codes("on a.b (e) { while (true) { break; } for (var i in e) { continue; } }")


def test_loop_does_not_leak_into_nested_handler_scope() -> None:
    assert "CX208" in codes("while (true) { break; }\non a.b (e) { continue; }")


@pytest.mark.parametrize("src", ["print = 1;", "on a.b (e) { 1 = 2; }",
                                 "conscious A { on a.b (e) { self = 1; } }",
                                 "a.b = 1;"])
def test_not_assignable(src: str) -> None:
    assert "CX209" in codes(src)


def test_assignable_targets() -> None:
    assert not errors("var o = {}; var a = [1]; o.k = 1; a[0] = 2; o.k += 1;")


def test_for_in_variable_scoped_to_loop() -> None:
    assert "CX201" in codes("on a.b (e) { for (var i in e) { print(i); } print(i); }")


def test_handlers_items_are_always_events() -> None:
    comp = compile_text("""
conscious A {
    on a.b (event) { iam { context: "x", handlers: [ self.validation.complete ] }; }
    on self.validation.complete (event) { print(event.result); }
}
emit a.b;
""")
    assert not [d for d in comp.diagnostics if d.is_error]
    call = comp.info.call_list[0]
    assert [i.event for i in call.items] == ["self.validation.complete"]


def test_handlers_in_emit_payload_are_events() -> None:
    assert not errors("emit system.file.read { path: \"p\", handlers: [ file.read.complete ] };")


def test_names_inside_conditional_expressions_are_resolved() -> None:
    k = kinds("var a = 1; var b = a > 0 ? a : -a; print(b < 2 ? b : nope);\n")
    assert k["a"] == {NameKind.GLOBAL} and k["b"] == {NameKind.GLOBAL}
    assert k["nope"] == {NameKind.UNKNOWN}
