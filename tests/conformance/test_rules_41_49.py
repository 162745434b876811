"""SPEC rules 41–49 (added after the first measurement round), each pinned in CX.

Rule 48 lives in ``test_operators.py``; rule 45's scheduling is covered in depth by
``tests/scheduling``, and rule 46's breaker states by ``tests/resilience``: here each
rule has a CX program whose output states it.
"""

from __future__ import annotations

from typing import Any


def test_rule_41_completion_at_the_deadline_is_a_timeout(cx: Any) -> None:
    r = cx("""
        on b.at (e) { await { durationMs: 100 }; return 1; }
        on b.before (e) { await { durationMs: 99 }; return 2; }
        var r = think { prompt: "p", k: b.at, j: b.before, timeout: 100 };
        print(r.k, r.j, r._errors.k.type, r._errors.result.type);
        var p = think { prompt: "p", timeout: 800 };
        var q = think { prompt: "p", timeout: 801 };
        print(p.result, p._errors.result.type, q.result);
    """)
    assert r.lines == ["null 2 timeout timeout", "null timeout [think] p"]


def test_rule_42_only_object_payloads_are_copied(cx: Any) -> None:
    r = cx("""
        object Box { }
        var shared = [1];
        var inst = new Box({ v: 1 });
        var o = { k: "orig" };
        on arr.x (e) { e[1] = "set by handler"; }
        on inst.x (e) { e.v = 2; }
        on obj.x (e) { e.k = "changed"; }
        on obj.x (e) { print("second sees", e.k); }
        emit arr.x shared;
        emit inst.x inst;
        emit obj.x o;
        await { durationMs: 1 };
        print(shared, inst.v, o.k);
    """)
    assert r.lines == ["second sees orig", '[1, "set by handler"] 2 orig']


def test_rule_43_bare_numbers_print_javascript_text(cx: Any) -> None:
    big = "1" + "0" * 308
    r = cx(f"""
        var inf = {big} * 10;
        var nan = inf - inf;
        print(inf); print(-inf); print(nan);
        print([inf, -inf, nan], {{ a: inf }});
        print("x" + inf + " " + nan, str(-inf), str([nan]));
    """)
    assert r.lines == ["Infinity", "-Infinity", "NaN", '[null, null, null] {"a": null}',
                       "xInfinity NaN -Infinity [null]"]


def test_rule_44_strings_count_code_points(cx: Any) -> None:
    r = cx("""
        var s = "🎯a\\u00e9\\ud83c\\udfaf";
        print(len(s), s.length, s[0], s[1], s[3]);
        var parts = [];
        for (var c in s) { parts[len(parts)] = c; }
        print(parts);
    """)
    assert r.lines == ["4 4 🎯 a 🎯", '["🎯", "a", "é", "🎯"]']


def test_rule_45_limit_counts_provider_calls_and_parallel_keeps_five_keys(
        run_file: Any) -> None:
    r = run_file("""
        on inner.x (e) { var r = infer { prompt: e.prompt }; return r.result; }
        var r = think { prompt: "p", a: inner.x, b: inner.x { prompt: "q" } };
        print(r.a, r.b, keys(r._parallel));
    """, "--max-concurrency", "1")
    assert r.code == 0, r.err
    assert r.lines == ['[infer] p [infer] q ["branches", "succeeded", "failed", "wall_ms", '
                       '"critical_ms"]']


def test_rule_46_breakers_are_on_by_default(run_file: Any) -> None:
    program = """
        on system.circuit.open (e) {
            print("open", keys(e), e.service, e.failures, e.windowMs, e.cooldownMs);
        }
        var kinds = [];
        for (var i = 0; i < 7; i++) {
            var r = think { prompt: "p" };
            kinds[len(kinds)] = r._errors.result.type;
        }
        print(kinds);
    """
    r = run_file(program, "--fail-rate", "1")
    assert r.lines == [
        'open ["service", "state", "failureRate", "requests", "failures", "windowMs", '
        '"cooldownMs"] think 5 10000 10000',
        '["provider", "provider", "provider", "provider", "provider", "circuit_open", '
        '"circuit_open"]']
    off = run_file(program, "--fail-rate", "1", "--breaker", "off")
    assert off.lines == ['["provider", "provider", "provider", "provider", "provider", '
                         '"provider", "provider"]']


def test_rule_47_no_handler_and_depth_are_never_retried(cx: Any) -> None:
    r = cx("""
        on deep.x (e) {
            var r = think { prompt: "p", again: deep.x, retries: 2 };
            if (r._errors && r._errors.again.type == "depth") {
                print("depth attempts", r._errors.again.attempts);
            }
            return 1;
        }
        var r = think { prompt: "p", k: nobody.x, d: deep.x, retries: 3 };
        print(r._errors.k.type, r._errors.k.attempts);
    """)
    assert r.lines == ["depth attempts 0", "no_handler 0"]


def test_rule_49_system_start_after_a_failed_top_level(run_file: Any) -> None:
    r = run_file("""
        on system.start (e) { print("started"); }
        var o = null;
        print("top");
        print(o.x);
        print("never");
    """)
    assert r.code == 3
    assert r.lines == ["top", "started"]
    assert "cannot read property `x` of null" in r.err
