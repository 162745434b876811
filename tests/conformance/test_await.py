"""Rule 50: `await { durationMs: 0 }` suspends like any other call; every call sets its
timer in program order at the call, with or without branches or items, so equal waits
resume in the order they were started; the `await` fast path (no branches, items or
fallback) is indistinguishable from the general path in every observable order."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.semantics.conftest import run_cx


def test_zero_wait_lets_queued_handlers_run_first(run_file: Any) -> None:
    r = run_file('on x.y (e) { print("h"); } emit x.y; await { durationMs: 0 }; '
                 'print("after");')
    assert (r.code, r.lines) == (0, ["h", "after"])


def test_polling_loop_lets_the_handler_that_ends_it_run(run_file: Any) -> None:
    r = run_file("""
        var done = false;
        var polls = 0;
        on work.finish (e) { done = true; }
        emit work.finish;
        while (!done) { polls++; await { durationMs: 0 }; }
        print("done after", polls);
    """)
    assert (r.code, r.lines) == (0, ["done after 1"])


def test_polling_loop_on_the_real_clock(run_file: Any) -> None:
    r = run_file("""
        var done = false;
        on work.finish (e) { done = true; }
        emit work.finish;
        while (!done) { await { durationMs: 0 }; }
        print("done");
    """, "--clock", "real")
    assert (r.code, r.lines) == (0, ["done"])


@pytest.mark.parametrize("ms", [0, 10])
def test_equal_waits_resume_in_start_order_with_or_without_branches(cx: Any, ms: int) -> None:
    r = cx(f"""
        on b.x (e) {{ return 1; }}
        on i.x (e) {{ print("item"); }}
        on go.a (e) {{ await {{ durationMs: {ms}, k: b.x }}; print("a"); }}
        on go.b (e) {{ await {{ durationMs: {ms} }}; print("b"); }}
        on go.c (e) {{ await {{ durationMs: {ms}, fallback: null }}; print("c"); }}
        on go.d (e) {{ var r = await {{ durationMs: {ms}, k: b.x, j: b.x }}; print("d", r.k); }}
        on go.e (e) {{ await {{ durationMs: {ms} }}; print("e"); }}
        emit go.a; emit go.b; emit go.c; emit go.d; emit go.e;
    """)
    assert r.lines == ["a", "b", "c", "d 1", "e"]


def test_awaits_and_think_calls_set_timers_in_program_order(cx: Any) -> None:
    r = cx("""
        on go.a (e) { think { prompt: "p" }; print("think"); }
        on go.b (e) { await { durationMs: 800 }; print("await"); }
        on go.c (e) { think { prompt: "q", handlers: [] }; print("think 2"); }
        on go.d (e) { await { minDurationMs: 800, maxDurationMs: 800 }; print("await 2"); }
        emit go.a; emit go.b; emit go.c; emit go.d;
    """)
    assert r.lines == ["think", "await", "think 2", "await 2"]


# ------------------------------------------------ fast path == general path (property)

SETTINGS = settings(max_examples=60, derandomize=True, deadline=timedelta(seconds=30),
                    suppress_health_check=[HealthCheck.too_slow], database=None)

WAIT = st.sampled_from(["durationMs: 0", "durationMs: 1", "durationMs: 2",
                        "minDurationMs: 0, maxDurationMs: 2", "durationMs: 0, note: \"n\""])


@st.composite
def steps(draw: st.DrawFn, me: int, n: int) -> list[str]:
    out: list[str] = []
    for k in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["print", "await", "await", "emit", "think", "branch",
                                     "loop"]))
        tag = f'"{me}.{k}"'
        if kind == "print":
            out.append(f"print({tag}, now());")
        elif kind == "await":
            out.append(f"var w{k} = await {{ {draw(WAIT)} }}; print({tag}, w{k}.result);")
        elif kind == "emit" and me + 1 < n:
            out.append(f"emit go.h{draw(st.integers(me + 1, n - 1))};")
        elif kind == "think":
            out.append(f'think {{ prompt: {tag} }}; print({tag}, "thought");')
        elif kind == "branch":
            out.append(f"var b{k} = await {{ {draw(WAIT)}, v: side.x }}; print({tag}, b{k}.v);")
        elif kind == "loop":
            out.append(f"var i{k} = 0; while (i{k} < 2) {{ i{k}++; await {{ {draw(WAIT)} }}; "
                       f"print({tag}, i{k}); }}")
    return out


@st.composite
def programs(draw: st.DrawFn) -> str:
    n = draw(st.integers(2, 5))
    lines = ['on side.x (e) { print("side"); return 1; }']
    for i in range(n):
        for _ in range(draw(st.integers(1, 2))):
            lines.append(f"on go.h{i} (e) {{ " + " ".join(draw(steps(i, n))) + " }")
    top = draw(steps(-1, n))
    lines += [f"emit go.h{draw(st.integers(0, n - 1))};" for _ in range(draw(st.integers(1, 3)))]
    lines += top
    return "\n".join(lines) + "\n"


def general(text: str) -> str:
    """The same program with every plain `await` forced onto the general path (a
    `fallback` never applies to a timer, so only the path changes)."""
    return re.sub(r"await \{ ((?:(?!side\.x)[^}])*) \}", r"await { \1, fallback: null }", text)


@SETTINGS
@given(programs())
def test_fast_path_is_indistinguishable_from_the_general_path(text: str) -> None:
    forced = general(text)
    fast, slow = run_cx(text, latency={"think": 1}), run_cx(forced, latency={"think": 1})
    assert (fast.code, fast.err) == (0, "")
    assert fast.lines == slow.lines
