"""Analysis never crashes on generated valid programs (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.analysis.graph_format import render
from tests.analysis.helpers import compile_text

EVENTS = ["a.b", "a.c", "x.y.z", "user.any.input", "user.bob.input", "system.start", "done"]
NAMES = ["v", "w", "event", "self", "g", "print", "Agent", "a.b", "zz"]
SERVICES = ["think", "infer", "learn", "is", "await", "thnk"]


@st.composite
def expr(draw: st.DrawFn, depth: int = 0) -> str:
    leaf = st.one_of(st.sampled_from(NAMES), st.integers(0, 9).map(str),
                     st.sampled_from(['"s"', "true", "null"]))
    if depth > 2:
        return draw(leaf)
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return f"{draw(expr(depth + 1))} + {draw(expr(depth + 1))}"
    if choice == 1:
        return f"print({draw(expr(depth + 1))})"
    if choice == 2:
        return f"{draw(st.sampled_from(NAMES))}.{draw(st.sampled_from(['k', 'name', 'b']))}"
    if choice == 3:
        return draw(call(depth + 1))
    if choice == 4:
        return f"[{draw(expr(depth + 1))}]"
    return draw(leaf)


@st.composite
def call(draw: st.DrawFn, depth: int = 0) -> str:
    props = []
    for i in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 4))
        if kind == 0:
            props.append(f"k{i}: {draw(st.sampled_from(EVENTS))}")
        elif kind == 1:
            props.append(f"k{i}: {draw(st.sampled_from(EVENTS))} {{ e: 1 }}")
        elif kind == 2:
            items = ", ".join(draw(st.lists(st.sampled_from(EVENTS), max_size=3)))
            props.append(f"handlers: [{items}]")
        elif kind == 3:
            key = draw(st.sampled_from(["timeout", "retries", "priority"]))
            value = draw(st.sampled_from(["1", '"high"', "v"]))
            props.append(f"{key}: {value}")
        else:
            props.append(f"k{i}: {draw(expr(depth + 1))}")
    return f"{draw(st.sampled_from(SERVICES))} {{ {', '.join(props)} }}"


@st.composite
def stmt(draw: st.DrawFn, depth: int = 0) -> str:
    choice = draw(st.integers(0, 7 if depth < 2 else 4))
    if choice == 0:
        return f"var {draw(st.sampled_from(['v', 'w', 'g']))} = {draw(expr())};"
    if choice == 1:
        return f"{draw(expr())};"
    if choice == 2:
        return f"emit {draw(st.sampled_from(EVENTS))} {{ p: {draw(expr())} }};"
    if choice == 3:
        return f"{draw(call())};"
    if choice == 4:
        return draw(st.sampled_from(["break;", "continue;", "return v;", "v = 1;"]))
    if choice == 5:
        return f"if ({draw(expr())}) {{ {draw(stmt(depth + 1))} }} else {{ {draw(stmt(depth + 1))} }}"
    if choice == 6:
        return f"while ({draw(expr())}) {{ {draw(stmt(depth + 1))} }}"
    return f"for (var i in {draw(expr())}) {{ {draw(stmt(depth + 1))} }}"


@st.composite
def program(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.integers(0, 3))
        body = " ".join(draw(st.lists(stmt(), max_size=3)))
        if kind == 0:
            parts.append(f"on {draw(st.sampled_from(EVENTS))} (event) {{ {body} }}")
        elif kind == 1:
            base = draw(st.sampled_from(["", " : Agent", " : Other"]))
            parts.append(f"conscious Agent{base} {{ realize(self: conscious) {{ {body} }} "
                         f"on {draw(st.sampled_from(EVENTS))} (event) {{ {body} }} }}")
        elif kind == 2:
            parts.append("var a = new Agent({ name: \"n\" });")
        else:
            parts.append(draw(stmt()))
    return "\n".join(parts)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program())
def test_analysis_never_crashes(src: str) -> None:
    from cxpar.span import SourceFile
    from cxpar.syntax.parser import parse

    result = parse(SourceFile("gen.cx", src))
    if not result.ok:
        return
    comp = compile_text(src)
    for d in comp.diagnostics:
        assert d.span.line >= 1 and d.code.startswith("CX")
    if comp.graph is not None:
        for fmt in ("text", "json", "mermaid", "dot"):
            assert render(comp.graph, fmt)
