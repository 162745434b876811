"""Pass `services`: call splitting, reserved props, entities, CX3xx diagnostics."""

from __future__ import annotations

import pytest

from cxpar.ast import nodes as n
from tests.analysis.helpers import at, codes, compile_text, errors, one

TICKET = """
on ticket.new (event) {
    var r = think {
        prompt: "Review: " + event.text,
        sentiment: sentiment.analyze,
        reply: reply.draft { tone: "warm" },
        timeout: 2000,
        retries: 2,
        priority: "high",
        concurrency: 4,
        lang: event.lang,
        handlers: [ ticket.reviewed, ticket.logged { level: 1 } ]
    };
}
on sentiment.analyze (e) { return 1; }
on reply.draft (e) { return 2; }
on ticket.reviewed (e) { }
on ticket.logged (e) { }
emit ticket.new { text: "hi", lang: "en" };
"""


def test_split_of_a_literal_call() -> None:
    comp = compile_text(TICKET)
    assert not [d for d in comp.diagnostics if d.is_error]
    (call,) = comp.info.call_list
    assert call.service == "think" and call.stem == "thinking" and call.known
    assert call.is_literal
    assert [k for k, _ in call.request] == ["prompt", "lang"]
    assert list(call.reserved) == ["timeout", "retries", "priority", "concurrency", "handlers"]
    assert [(b.key, b.event) for b in call.branches] == [("sentiment", "sentiment.analyze"),
                                                          ("reply", "reply.draft")]
    assert call.branches[0].extra is None
    assert isinstance(call.branches[1].extra, n.Object)
    assert call.branches[1].span.line == 6
    assert [i.event for i in call.items] == ["ticket.reviewed", "ticket.logged"]
    assert call.items[0].extra is None and isinstance(call.items[1].extra, n.Object)
    assert isinstance(call.owner, n.OnHandler)
    assert comp.info.call(call.node) is call
    assert {"thinking.complete", "thinking.error", "sentiment.analyze"} <= comp.info.emitted


def test_non_literal_argument() -> None:
    comp = compile_text("conscious A { realize(self: conscious) { learn self; } }")
    (call,) = comp.info.call_list
    assert not call.is_literal and call.request == [] and call.owner is not None


def test_bound_root_is_a_request_prop() -> None:
    comp = compile_text("var cfg = {}; think { prompt: \"p\", mode: cfg.mode };")
    (call,) = comp.info.call_list
    assert [k for k, _ in call.request] == ["prompt", "mode"] and not call.branches


def test_unknown_service() -> None:
    d = one("thnk { prompt: \"hello\" };", "CX301")
    assert d.message == "unknown service `thnk`"
    assert d.help == "did you mean `think`?"
    assert at(d) == (1, 1, 1, 5)


def test_plugin_service_is_known() -> None:
    comp = compile_text("summarize { text: \"x\" };", extra_services={"summarize": "summarizing"})
    assert not [d for d in comp.diagnostics if d.is_error]
    assert comp.info.call_list[0].stem == "summarizing"


def test_builtin_used_as_service_is_warning() -> None:
    d = one('print "hello";', "CX311")
    assert not d.is_error
    assert compile_text('print "hello";').info.call_list[0].function_call


@pytest.mark.parametrize("prop,ok", [
    ("timeout: \"2s\"", False), ("timeout: 100", True), ("timeout: t", True),
    ("retries: 1.5", False), ("retries: 3", True), ("retries: true", False),
    ("priority: \"urgent\"", False), ("priority: \"low\"", True), ("priority: 3", True),
    ("concurrency: 0", False), ("concurrency: 2", True), ("handlers: 3", False),
    ("handlers: a.b", False), ("timeout: null", False),
])
def test_reserved_prop_types(prop: str, ok: bool) -> None:
    src = f"var t = 5; think {{ prompt: \"p\", {prop} }};"
    assert ("CX302" not in codes(src)) is ok


def test_reserved_prop_span() -> None:
    d = one('think { prompt: "p", timeout: "2s" };', "CX302")
    assert at(d) == (1, 31, 1, 35)
    assert d.message == "reserved prop `timeout` has the wrong type"


def test_duplicate_key_in_call() -> None:
    d = one('think { prompt: "a", prompt: "b" };', "CX303")
    assert at(d) == (1, 22, 1, 28) and d.labels[0].span.col == 9


def test_duplicate_key_elsewhere_is_warning() -> None:
    d = one("var o = { k: 1, k: 2 };", "CX309")
    assert not d.is_error and at(d) == (1, 17, 1, 18)


@pytest.mark.parametrize("prop", ['result: "x"', "result: a.b", '_errors: 1', "_parallel: 2"])
def test_reserved_payload_keys(prop: str) -> None:
    d = one(f'think {{ prompt: "p", {prop} }};\non a.b (e) {{ }}', "CX304")
    assert d.span.col == 22


def test_new_unknown_entity() -> None:
    d = one('object Agent { }\nvar a = new Agnet({ name: "a" });', "CX305")
    assert at(d) == (2, 13, 2, 18) and d.help == "did you mean `Agent`?"
    assert not errors('object Agent { }\nvar a = new Agent({ name: "a" });')


def test_unknown_and_cyclic_base() -> None:
    d = one("conscious Agent : Base { }", "CX306")
    assert at(d) == (1, 19, 1, 23)
    cyc = [d for d in compile_text("object A extends B { }\nobject B extends A { }").diagnostics
           if d.code == "CX307"]
    assert len(cyc) == 2 and all(d.is_error for d in cyc)
    assert "CX307" in codes("object A extends A { }")


def test_entity_declared_twice() -> None:
    d = one("object A { }\nobject A { }", "CX310")
    assert at(d) == (2, 8, 2, 9)


def test_handlers_item_not_an_event() -> None:
    d = one('think { prompt: "p", handlers: [ "done" ] };', "CX308")
    assert at(d) == (1, 34, 1, 40)


def test_entity_chain_realize_and_handler_order() -> None:
    comp = compile_text("""
conscious Base {
    realize(self: conscious) { learn self; }
    on base.one (e) { }
    on base.two (e) { }
}
conscious Mid : Base { on mid.one (e) { } }
conscious Leaf : Mid { on leaf.one (e) { } }
""")
    leaf = comp.info.entities["Leaf"]
    assert leaf.bases == ["Mid", "Base"]
    assert leaf.realize_owner == "Base" and leaf.realize is not None
    assert [h.event.dotted for h in leaf.handlers] == ["base.one", "base.two", "mid.one",
                                                         "leaf.one"]
