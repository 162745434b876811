"""Static trip counts of counting loops (``cxpar graph --cost``): the arithmetic against
running the same loop, for every comparison and step direction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cxpar.analysis.trips import trip_counts
from cxpar.driver import front_end_source
from cxpar.span import SourceFile

OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
       ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _times(src: str) -> tuple[list[int], int]:
    fe = front_end_source(SourceFile("t.cx", src))
    assert fe.compilation is not None, fe.diagnostics
    trips = trip_counts(fe.compilation.program)
    return sorted(trips.times.values()), trips.unknown


def _run(start: int, op: str, end: int, step: int) -> int:
    i, n = start, 0
    while OPS[op](i, end) and n < 10_000:
        n += 1
        i += step
    return n


@settings(max_examples=120, deadline=None)
@given(start=st.integers(-20, 20), end=st.integers(-20, 20), step=st.integers(1, 7),
       op=st.sampled_from(sorted(OPS)), form=st.sampled_from(["for", "while"]))
def test_trip_count_is_what_running_the_loop_does(start: int, end: int, step: int, op: str,
                                                  form: str) -> None:
    signed = step if op in ("<", "<=") else -step
    upd = f"i += {signed}" if signed > 0 else f"i -= {step}"
    call = 'var r = think { prompt: "p" };'
    if form == "for":
        src = f"for (var i = {start}; i {op} {end}; {upd}) {{ {call} }}\n"
    else:
        src = f"var i = {start};\nwhile (i {op} {end}) {{ {call} {upd}; }}\n"
    assert _times(src) == ([_run(start, op, end, signed)], 0)


def test_nested_loops_multiply_and_handlers_start_again() -> None:
    src = ("for (var a = 0; a < 3; a++) {\n"
           "    for (var b = 0; b < 4; b++) { var r = think { prompt: \"p\" }; }\n"
           "}\n"
           "on x.y (event) { var s = infer { prompt: \"q\" }; }\n")
    assert _times(src) == ([1, 12], 0)


def test_unknown_loops() -> None:
    call = 'var r = think { prompt: "p" };'
    for src in (f"var n = 3;\nwhile (n > len(\"ab\")) {{ {call} n -= 1; }}\n",  # bound
                f"var i = 0;\nwhile (i < 5) {{ {call} i += 1; i += 1; }}\n",  # two steps
                f"for (var i = 0; i < 5; i++) {{ {call} i = 9; }}\n",  # body assigns i
                f"var xs = [1, 2];\nfor (var x in xs) {{ {call} }}\n",  # not a literal
                f"for (var i = 0; i < 5; i -= 1) {{ {call} }}\n"):  # never ends
        assert _times(src) == ([1], 1), src
