"""The python backend: CX positions in generated code, optimisations that must not change
behaviour, and standalone modules."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import textwrap
from pathlib import Path

from cxpar.codegen.module import compile_program, python_source
from cxpar.codegen.python import generate
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile

VIRTUAL = RunSettings(clock="virtual")


def analysed(text: str, name: str = "t.cx"):  # type: ignore[no-untyped-def]
    fe = front_end_source(SourceFile(name, textwrap.dedent(text)))
    assert not fe.has_errors, [d.message for d in fe.diagnostics]
    assert fe.compilation is not None
    return fe.compilation


def run(text: str) -> tuple[int, str, str]:
    comp = analysed(text)
    c = compile_program(comp)
    out, err = io.StringIO(), io.StringIO()
    code = run_factory(c.program, c.spans, c.sources, VIRTUAL, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_generated_nodes_carry_cx_positions() -> None:
    # A blank first line: a node left at line 1 by mistake would show up here.
    module, _ = generate(analysed("""

        var total = 0;
        on tick.x (e) {
            total += e.n;
        }
        emit tick.x { n: 2 };
        """))
    lines = {node.lineno for node in ast.walk(module)
             if isinstance(node, ast.stmt) and hasattr(node, "lineno")}
    # CX lines 3..7 hold code (after dedent the first line is blank, the second too).
    assert {3, 4, 5, 7} <= lines
    emit = next(n for n in ast.walk(module) if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute) and n.func.attr == "emit")
    assert emit.lineno == 7 and emit.col_offset == 0


def test_columns_are_utf8_byte_offsets() -> None:
    module, _ = generate(analysed('var s = "é"; var t = s + 1;\n'))
    add = next(n for n in ast.walk(module) if isinstance(n, ast.Call)
               and isinstance(n.func, ast.Attribute) and n.func.attr == "add")
    # `s + 1` starts at character 22 (0-based 21) but byte 22: `é` is two bytes.
    assert add.col_offset == 22


def test_runtime_error_points_at_cx_source() -> None:
    code, _out, err = run("""
        var o = null;
        print(o.name);
        """)
    assert code == 3
    assert "cannot read property `name` of null" in err
    assert "t.cx:3:9" in err and "print(o.name);" in err
    assert "Traceback" not in err


def test_read_only_handlers_share_the_event_but_writers_get_their_own_copy() -> None:
    comp = analysed("""
        on a.b (e) { print("reader", e.x); }
        on a.b (e) { e.x = 99; print("writer", e.x); }
        on a.b (e) { print("reader2", e.x); }
        emit a.b { x: 1 };
        """)
    c = compile_program(comp)
    source = python_source(comp)
    assert source.count("__cx_pure_event__ = True") == 2
    out = io.StringIO()
    assert run_factory(c.program, c.spans, c.sources, VIRTUAL, stdout=out) == 0
    assert out.getvalue().splitlines() == ["reader 1", "writer 99", "reader2 1"]


def test_escaping_event_is_not_read_only() -> None:
    source = python_source(analysed("""
        var kept = null;
        on a.b (e) { kept = e; }
        on a.c (e) { emit a.d e; }
        on a.d (e) { return e; }
        on a.e (e) { e["k"] = 1; }
        on a.f (e) { e.n += 1; }
        emit a.b {}; emit a.c {}; emit a.e {}; emit a.f { n: 1 };
        """))
    assert "__cx_pure_event__" not in source


def test_await_without_branches_uses_a_constant_request() -> None:
    source = python_source(analysed("""
        on a.b (e) { await { durationMs: 50 }; return 1; }
        emit a.b {};
        """))
    assert "_k = {'durationMs': 50.0}" in source
    assert "rt.await_(" in source


def test_await_payload_is_the_same_on_the_fast_path() -> None:
    code, out, _ = run("""
        var r = await { durationMs: 250, note: "x" };
        print(r);
        """)
    assert code == 0
    assert out.strip() == ('{"durationMs": 250, "note": "x", "result": 250, "_parallel": '
                           '{"branches": 0, "succeeded": 0, "failed": 0, "wall_ms": 250, '
                           '"critical_ms": 250}}')


def test_standalone_module_runs_with_only_the_runtime(tmp_path: Path) -> None:
    out_py = tmp_path / "out.py"
    out_py.write_text(python_source(analysed("""
        var n = 0;
        for (var i = 0; i < 3; i++) { n += i; }
        print("sum", n);
        """)), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(out_py), "--clock", "virtual"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "sum 3\n"


def test_handlers_that_never_suspend_run_as_callbacks_in_fifo_order() -> None:
    comp = analysed("""
        on a.b (e) { print("first", e.n); }
        on a.b (e) { print("second", e.n); await { durationMs: 10 }; print("second done"); }
        on a.b (e) { print("third", e.n); var o = null; print(o.x); }
        on a.b (e) { print("fourth", e.n); }
        emit a.b { n: 1 };
        emit a.b { n: 2 };
        print("top level done");
        """)
    source = python_source(comp)
    assert source.count("__cx_sync__ =") == 3  # not the handler that awaits
    c = compile_program(comp)
    out, err = io.StringIO(), io.StringIO()
    code = run_factory(c.program, c.spans, c.sources, VIRTUAL, stdout=out, stderr=err)
    assert code == 3  # the null read in the third handler, twice
    assert err.getvalue().count("cannot read property `x` of null") == 2
    assert out.getvalue().splitlines() == [
        "top level done",
        "first 1", "second 1", "third 1", "fourth 1",
        "first 2", "second 2", "third 2", "fourth 2",
        "second done", "second done",
    ]


def test_timeout_cancels_queued_callbacks_too() -> None:
    comp = analysed("""
        on tick.x (e) { emit tick.x { n: e.n + 1 }; }
        emit tick.x { n: 0 };
        """)
    c = compile_program(comp)
    err = io.StringIO()
    # An endless chain of instant handlers never lets virtual time advance: the stall
    # guard (or --timeout) stops it and the program ends with exit 3, not a hang.
    code = run_factory(c.program, c.spans, c.sources, VIRTUAL.replace(guard_s=1.0),
                       stdout=io.StringIO(), stderr=err)
    assert code == 3
    assert "stalled" in err.getvalue() or "timed out" in err.getvalue()


def test_printing_a_cyclic_or_very_deep_value_is_a_cx_error() -> None:
    code, out, err = run("""
        var o = { a: 1 };
        o.me = o;
        print("before");
        print(o);
        """)
    assert code == 3 and out == "before\n"
    assert "contains itself" in err and "t.cx:5:1" in err
    assert "internal error" not in err
