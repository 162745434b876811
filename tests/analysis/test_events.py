"""Passes `events` and `cycles`: CX4xx warnings."""

from __future__ import annotations

from cxpar.analysis.model import matches
from tests.analysis.helpers import at, codes, compile_text, one


def test_branch_without_subscriber() -> None:
    d = one('on go (e) { think { prompt: "p", summary: text.summarize }; }\nemit go;', "CX401")
    assert not d.is_error and at(d) == (1, 43, 1, 57)


def test_item_without_subscriber() -> None:
    d = one('think { prompt: "p", handlers: [ answer.ready ] };', "CX402")
    assert at(d) == (1, 34, 1, 46)


def test_emit_without_subscriber_reported_once() -> None:
    comp = compile_text("emit order.created;\nemit order.created;")
    found = [d for d in comp.diagnostics if d.code == "CX403"]
    assert len(found) == 1 and at(found[0]) == (1, 6, 1, 19) and found[0].notes


def test_handler_never_triggered_and_external() -> None:
    d = one("on user.input (e) { }", "CX404")
    assert at(d) == (1, 4, 1, 14)
    assert "CX404" not in codes("/// @external\non user.input (e) { }")
    assert "CX404" not in codes("/// Comes from the UI.\n/// @external\non user.input (e) { }")


def test_runtime_events_trigger_handlers() -> None:
    assert "CX404" not in codes("on system.start (e) { }")
    assert "CX404" not in codes("on system.circuit.open (e) { }")
    assert "CX404" not in codes('think { prompt: "p" };\non thinking.complete (e) { }\n'
                                "on thinking.error (e) { }")
    assert "CX404" in codes('think { prompt: "p" };\non inferring.complete (e) { }')


def test_any_wildcard() -> None:
    assert matches(("user", "any", "input"), "user.alice.input")
    assert not matches(("user", "any", "input"), "user.input")
    assert "CX404" not in codes("on user.any.input (e) { }\nemit user.alice.input;")
    assert "CX403" not in codes("on user.any.input (e) { }\nemit user.alice.input;")


def test_several_subscribers_make_an_array() -> None:
    d = one('on go (e) { think { prompt: "p", score: doc.score }; }\nemit go;\n'
            "on doc.score (e) { return 1; }\non doc.score (e) { return 2; }", "CX405")
    assert not d.is_error and len(d.labels) == 2


def test_shadowed_event() -> None:
    d = one('var review = {};\non go (e) { think { prompt: "p", r: review.done }; }\n'
            "emit go;\non review.done (e) { return 1; }", "CX406")
    assert at(d) == (2, 37, 2, 48)


def test_cycle_through_branches() -> None:
    comp = compile_text('on a.b (e) { return think { prompt: e.prompt, again: a.b }; }\nemit a.b;')
    d = [x for x in comp.diagnostics if x.code == "CX407"]
    assert len(d) == 1 and d[0].span.col == 47
    comp = compile_text("""
on x.one (e) { return infer { p: 1, k: x.two }; }
on x.two (e) { return infer { p: 1, k: x.one }; }
emit x.one;
""")
    assert [x.code for x in comp.diagnostics].count("CX407") == 1
    assert "CX407" not in codes("on x.one (e) { emit x.two; }\non x.two (e) { emit x.one; }\n"
                                "emit x.one;")


def test_clean_program_has_no_diagnostics() -> None:
    assert codes("""
on ticket.new (event) {
    var r = think { prompt: event.text, s: sentiment.analyze, handlers: [ ticket.done ] };
    print(r.s);
}
on sentiment.analyze (e) { return infer { text: e.prompt }; }
on ticket.done (e) { print(e.result); }
emit ticket.new { text: "hi" };
""") == []
