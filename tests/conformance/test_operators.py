"""Rule 48: `x++` / `x--` as an expression has the old value, `++x` / `--x` the new one,
for variables, globals, properties and indexes alike; the target is evaluated once."""

from __future__ import annotations

from typing import Any


def test_issue_example_through_the_cli(run_file: Any) -> None:
    r = run_file("var x = 1; var y = x++; print(y, x); print(y == 1, x == 2);")
    assert (r.code, r.lines) == (0, ["1 2", "true true"])


def test_postfix_and_prefix_values_on_every_target(cx: Any) -> None:
    r = cx("""
        var g = 10;
        var o = { n: 5 };
        var a = [1, 2];
        print(g++, g, ++g, g, g--, g, --g, g);
        print(o.n++, o.n, ++o.n, o.n--, --o.n, o.n);
        print(a[1]++, a[1], ++a[1], a[1]--, --a[1], a[1]);
        on e.x (e) {
            var k = 3;
            var m = k-- + 10;
            print(k, m, k++ * 2, k);
            g = 0;
            print(g++, g);
        }
        emit e.x;
    """)
    assert r.code == 0, r.err
    assert r.lines == ["10 11 12 12 12 11 10 10", "5 6 7 7 5 5", "2 3 4 4 2 2",
                       "2 13 4 3", "0 1"]


def test_target_is_evaluated_once(cx: Any) -> None:
    r = cx("""
        var calls = 0;
        var arr = [0, 0];
        on e.x (e) {
            var i = 0;
            print(arr[i++]++, i, arr);
        }
        emit e.x;
    """)
    assert r.lines == ["0 1 [1, 0]"]


def test_updates_in_loops_and_statements(cx: Any) -> None:
    r = cx("""
        var n = 0;
        for (var i = 0; i < 3; i++) { n++; if (i == 1) { continue; } }
        var j = 3;
        while (j-- > 0) { n += 10; }
        print(n, j);
    """)
    assert r.lines == ["33 -1"]


def test_conditional_expression_reads_names(run_file: Any) -> None:
    """`c ? a : b` once skipped name resolution: an internal error in codegen."""
    r = run_file("var x = 1; var y = 2; print(x > 1 ? x : y, x == 1 ? [x] : { k: y });")
    assert (r.code, r.lines) == (0, ["2 [1]"])
