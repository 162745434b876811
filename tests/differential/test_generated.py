"""Hypothesis-generated programs (emit / handler / fan-out shapes, `any` wildcards,
entities subscribing at `new`): identical event traces under both backends."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import analyse_text, assert_same, run_traced

SETTINGS = settings(max_examples=30, derandomize=True, deadline=timedelta(seconds=20),
                    suppress_health_check=[HealthCheck.too_slow], database=None)

PARTS = ["a", "b", "c"]
events = st.lists(st.sampled_from(PARTS), min_size=1, max_size=2).map(
    lambda ps: ".".join(["e", *ps]))
patterns = st.tuples(st.sampled_from(["e", "e", "any"]), st.lists(
    st.sampled_from(PARTS + ["any"]), min_size=1, max_size=2)).map(
    lambda t: ".".join([t[0], *t[1]]))

# The parser raises the recursion limit on first use; do it before hypothesis runs.
analyse_text("print(1);\n")


@st.composite
def programs(draw: st.DrawFn) -> str:
    lines: list[str] = []
    n_handlers = draw(st.integers(1, 6))
    for i in range(n_handlers):
        pat = draw(patterns)
        body = [f'print("h{i} " + "{pat}" + " " + event.n);']
        kind = draw(st.sampled_from(["plain", "emit", "return", "call"]))
        if kind == "emit":
            body.append(f"if (event.n < 2) {{ emit {draw(events)} {{ n: event.n + 1 }}; }}")
        elif kind == "return":
            body.append(f'return "r{i}:" + event.n;')
        elif kind == "call":
            body.append(f"if (event.n < 1) {{ var r = think {{ prompt: \"p{i}\", n: 1, "
                        f"k: {draw(events)}, timeout: 500 }}; print(r._parallel.failed); }}")
        lines.append(f"on {pat} (event) {{ " + " ".join(body) + " }")
    ent_pat = draw(patterns)
    lines.append(f"object W {{ on {ent_pat} (event) {{ print(\"w \" + self.id); "
                 f"return self.id; }} }}")
    n_new = draw(st.integers(0, 3))
    top: list[str] = []
    for j in range(n_new):
        top.append(f"new W({{ id: {j} }});")
    for _ in range(draw(st.integers(1, 6))):
        choice = draw(st.sampled_from(["emit", "emit", "call", "new"]))
        if choice == "emit":
            top.append(f"emit {draw(events)} {{ n: 0 }};")
        elif choice == "new":
            top.append(f"new W({{ id: {len(top) + 10} }});")
        else:
            keys = draw(st.lists(events, min_size=1, max_size=4))
            props = ", ".join(f"k{i}: {e}" for i, e in enumerate(keys))
            items = ", ".join(draw(st.lists(events, max_size=2)))
            top.append(f'var r{len(top)} = infer {{ prompt: "q", n: 0, {props}, '
                       f"handlers: [ {items} ] }}; print(r{len(top)});")
    return "\n".join(lines + top) + "\n"


@SETTINGS
@given(programs())
def test_generated_programs_same_trace(text: str) -> None:
    fe = analyse_text(text)
    assert_same(run_traced(fe, "python"), run_traced(fe, "llvm"))


@SETTINGS
@given(programs(), st.integers(min_value=1, max_value=12))
def test_generated_programs_same_trace_with_a_routing_switch(text: str, after: int) -> None:
    """`--backend llvm`'s tiered routing switching to the JIT'd router in mid-run
    (entities subscribing before and after the switch, `any` patterns, fan-out)."""
    fe = analyse_text(text)
    assert_same(run_traced(fe, "python"), run_traced(fe, "llvm", routing_after=after))
