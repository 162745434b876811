"""Every statement form of the grammar, generated and mutated, through every stage that
`cxpar check`, `graph`, `compile` and `run` use: nothing is ever an internal error
(exit 70) -- a program either has diagnostics, or compiles, emits and runs (issue 15).

The generator covers the grammar's whole statement set (declarations, every `emit`
form, if/else, while, both `for` forms with every clause optional and empty bodies
such as `for(;;);`, block conditionals, break/continue/return, entities, handlers)
and the expression forms inside them; mutations then delete, duplicate and swap
tokens. Each example runs on the virtual clock with the sim provider, with a short
loop limit so that loops which never suspend end quickly.
"""

from __future__ import annotations

import ast
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.ast import nodes as n
from cxpar.ast.dump import dump_json, dump_text
from cxpar.ast.visit import walk
from cxpar.codegen.module import compile_program, python_source
from cxpar.commands.graph import render_graph
from cxpar.driver import front_end_source
from cxpar.runtime import support
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile

from .test_never_crash import mutate_words

SETTINGS = settings(max_examples=150, derandomize=True, deadline=timedelta(seconds=60),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)

#: Declared by :data:`PRELUDE` (globals), plus a few that are not, rarely drawn.
NAMES = ["x", "y", "n", "s", "o", "arr"] * 6 + ["self", "event", "e", "undeclared"]
PRELUDE = 'var x = 1; var y = 2; var n = 0; var s = "s"; var o = { k: 1 }; var arr = [1, 2];\n'
LOCALS = ["v1", "v2", "v3"]
EVENTS = ["a.b", "a.c", "go.x", "any.b", "system.start", "new.user"]
SERVICES = ["think", "infer", "learn", "await", "is", "not", "execute"] * 3 + ["thnk"]

names = st.sampled_from(NAMES)
events = st.sampled_from(EVENTS)


def expr(depth: int = 2) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(["1", "0", "2.5", '"s"', '"\\n\\x41\\q"', "true", "false", "null",
                         "[]", "{}", "[1, 2]", '{ k: 1, "q": 2, }', "now()",
                         "random()", "len(arr)", "keys(o)", "str(1)", "num(\"4\")"]),
        names)
    if depth <= 0:
        return leaves
    sub = expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "%", "<", ">=", "==", "!=", "&&",
                                        "||"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["!", "-", "+"]), sub).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(names, st.sampled_from(["++", "--"]), st.booleans()).map(
            lambda t: f"{t[0]}{t[1]}" if t[2] else f"{t[1]}{t[0]}"),
        st.tuples(names, st.sampled_from(["=", "+=", "-=", "*=", "/="]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, sub, sub).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(sub, names).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(sub, sub).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.lists(sub, max_size=3).map(lambda xs: f"print({', '.join(xs)})"),
        st.tuples(st.sampled_from(["len", "str", "keys", "num", "len", "f"]), sub,
                  st.integers(0, 9)).map(lambda t: f"{t[0]}({t[1]})" if t[2] else f"{t[0]}()"),
        st.tuples(st.sampled_from(["A", "A", "B", "Nope"]), st.lists(sub, max_size=3)).map(
            lambda t: f"new {t[0]}({', '.join(t[1])})"),
        st.lists(sub, max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
        st.lists(st.tuples(names, sub), max_size=3).map(
            lambda ps: "{ " + ", ".join(f"{k}: {v}" for k, v in ps) + " }"),
        service(depth - 1),
    )


def service(depth: int) -> st.SearchStrategy[str]:
    props = st.lists(st.one_of(
        st.tuples(st.sampled_from(["prompt", "text", "durationMs", "timeout", "retries",
                                   "priority", "concurrency", "timout", "k"]),
                  expr(depth) if depth > 0 else st.sampled_from(['"p"', "1", "0"])).map(
            lambda t: f"{t[0]}: {t[1]}"),
        st.tuples(st.sampled_from(["b1", "b2", "b1", "b2", "result"]), events).map(
            lambda t: f"{t[0]}: {t[1]}"),
        st.tuples(st.sampled_from(["b3"]), events).map(lambda t: f"{t[0]}: {t[1]} {{ z: 1 }}"),
        st.lists(events, max_size=2).map(lambda es: f"handlers: [{', '.join(es)}]"),
    ), max_size=4, unique_by=lambda prop: prop.split(":")[0])
    return st.one_of(
        st.tuples(st.sampled_from(SERVICES), props).map(
            lambda t: f"{t[0]} {{ {', '.join(t[1])} }}"),
        st.tuples(st.sampled_from(SERVICES), names).map(lambda t: f"{t[0]} {t[1]}"),
    )


@st.composite
def statement(draw: st.DrawFn, depth: int = 2, loop: bool = False, fn: bool = False) -> str:
    kinds = ["var", "expr", "expr", "emit", "empty", "service"]
    kinds += ["break", "continue"] if loop else []
    kinds += ["return"] if fn else []
    if draw(st.integers(0, 9)) == 0:  # now and then, a statement in the wrong place
        kinds += ["let", "break", "return"]
    if depth > 0:
        kinds += ["block", "if", "while", "for_in", "for_c", "block_call"]
    kind = draw(st.sampled_from(kinds))
    e = expr(1)

    def body(in_loop: bool = loop) -> str:
        return draw(statement(depth - 1, in_loop, fn)) if depth > 0 else ";"

    if kind == "var":
        init = draw(st.one_of(st.just(""), e.map(lambda v: f" = {v}")))
        typ = draw(st.sampled_from(["", "", ": number", ": array<string>", ": Thing[]"]))
        return f"var {draw(st.sampled_from(LOCALS))}{typ}{init};"
    if kind == "let":
        return f"{draw(st.sampled_from(['let', 'const']))} {draw(names)} = {draw(e)};"
    if kind == "expr":
        return f"{draw(e)};"
    if kind == "emit":
        form = draw(st.sampled_from(["", " { k: 1 }", " x", ", x", " [1]"]))
        return f"emit {draw(events)}{form};"
    if kind in ("break", "continue"):
        return f"{kind};"
    if kind == "return":
        return draw(st.sampled_from(["return;", f"return {draw(e)};"]))
    if kind == "empty":
        return ";"
    if kind == "service":
        return f"{draw(service(1))};"
    if kind == "block":
        return "{ " + " ".join(draw(st.lists(statement(depth - 1, loop, fn), max_size=3))) + " }"
    if kind == "if":
        other = draw(st.one_of(st.just(""), st.just(" else " + body())))
        return f"if ({draw(e)}) {body()}{other}"
    if kind == "while":
        return f"while ({draw(e)}) {body(True)}"
    if kind == "for_in":
        var = draw(st.sampled_from(["var ", ""]))
        target = draw(st.sampled_from(LOCALS)) if var else draw(names)
        return f"for ({var}{target} in {draw(e)}) {body(True)}"
    if kind == "for_c":
        init = draw(st.sampled_from(["", "var i = 0", "n = 0", "x++"]))
        cond = draw(st.sampled_from(["", "n < 2", "false", draw(e)]))
        step = draw(st.sampled_from(["", "n++", "n += 1", "--n"]))
        return f"for({init};{cond};{step}) {body(True)}"
    svc = draw(st.sampled_from(["is", "not", "when", "think"]))
    arg = draw(st.sampled_from(["{ condition: true }", "{ prompt: \"p\" }", "{ x > 1 }"]))
    return f"{svc} {arg} {{ {body()} }}"


@st.composite
def program(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for i in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["conscious", "object"]))
        name = ["A", "B"][i]
        base = draw(st.sampled_from(["", "", " : A", " extends A"])) if i else ""
        members = []
        if draw(st.booleans()):
            params = draw(st.sampled_from(["", "self", "self: conscious, p", "self, p: any"]))
            members.append(f"realize({params}) {{ "
                           f"{' '.join(draw(st.lists(statement(1, fn=True), max_size=3)))} }}")
        for _ in range(draw(st.integers(0, 2))):
            members.append(f"on {draw(events)} (e) {{ "
                           f"{' '.join(draw(st.lists(statement(1, fn=True), max_size=3)))} }}")
        parts.append(f"{kind} {name}{base} {{ {' '.join(members)} }}")
    for _ in range(draw(st.integers(0, 3))):
        param = draw(st.sampled_from(["(e)", "(event)", "()", ""]))
        asyn = draw(st.sampled_from(["", "async "]))
        parts.append(f"on {asyn}{draw(events)} {param} {{ "
                     f"{' '.join(draw(st.lists(statement(2, fn=True), max_size=4)))} }}")
    parts += draw(st.lists(statement(2), max_size=6))
    parts = draw(st.permutations(parts))
    return PRELUDE + "\n".join(parts) + "\n"


@st.composite
def mutated(draw: st.DrawFn) -> str:
    return mutate_words(draw, draw(program()), 3, None)


def through_every_stage(text: str) -> None:
    """What check, graph, compile (every --emit) and run do with ``text``; any exception
    here is what the CLI reports as an internal error (exit 70)."""
    fe = front_end_source(SourceFile("gen.cx", text))
    for d in fe.diagnostics:
        assert d.code.startswith("CX") and d.message and d.span.line >= 1
    if fe.program is not None and not any(d.is_error for d in fe.diagnostics[:1]):
        dump_text(fe.program)
        json.loads(dump_json(fe.program))
    if fe.has_errors or fe.compilation is None:
        return
    info = fe.compilation.info
    for node in walk(fe.compilation.program):  # resolution reached every name
        if isinstance(node, (n.Name, n.This, n.Member)):
            assert info.ref(node) is not None, (type(node).__name__, node.span)
    for fmt in ("text", "mermaid", "dot", "json"):
        render_graph(fe, fmt)
    ast.parse(python_source(fe.compilation))
    compiled = compile_program(fe.compilation)
    out, err = io.StringIO(), io.StringIO()
    settings = RunSettings(clock="virtual", timeout_ms=5_000, guard_s=2.0)
    code = run_factory(compiled.program, compiled.spans, compiled.sources, settings,
                       stdout=out, stderr=err)
    assert code in (0, 3), (code, err.getvalue())
    assert "internal error" not in err.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def short_loop_limit(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(support, "LOOP_LIMIT_S", 0.05)


front_end_source(SourceFile("warm.cx", "print(1);\n"))  # raise the recursion limit first


@SETTINGS
@given(program())
def test_generated_statements_never_internal_error(text: str) -> None:
    through_every_stage(text)


@SETTINGS
@given(mutated())
def test_mutated_statements_never_internal_error(text: str) -> None:
    through_every_stage(text)


@pytest.mark.parametrize("text", [
    "for(;;);", "for(;;) {}", "var i; for(i=0;;);", "for(var i = 0;;) { break; }",
    "for(;false;);", "on a.b (e) { for(;;) { return 1; } }", "while (true) { break; }",
    "for (var k in {}) ;", "if (true) ; else ;", "is { condition: true } { }",
    "when { condition: 1 } { for(;;); }", "{ ; ; }", "on a.b () { }", "x++;",
    "var x = 1; print(true ? 1 : x);", "var x = 1; var y = x > 0 ? [x] : { k: x };",
])
def test_empty_clauses_and_bodies(text: str) -> None:
    through_every_stage(text + "\n")
