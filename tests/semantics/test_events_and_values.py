"""Events (rules 1–4, 14, 33), errors and exit codes (rules 5, 6), printing (22, 40),
statements (28) and entities (29), all written in CX."""

from __future__ import annotations

from typing import Any

# --- emit ordering (rules 1, 33) ----------------------------------------------------------


def test_emit_only_queues_and_runs_fifo(cx: Any) -> None:
    r = cx("""
        on e.one (e) { print("one a", e.n); }
        on e.two (e) { print("two", e.n); }
        on e.one (e) { print("one b", e.n); }
        emit e.one { n: 1 };
        emit e.two { n: 2 };
        emit e.one { n: 3 };
        print("top level");
    """)
    assert r.lines == ["top level", "one a 1", "one b 1", "two 2", "one a 3", "one b 3"]


def test_queued_handlers_start_at_the_emitters_next_suspension(cx: Any) -> None:
    r = cx("""
        on e.x (e) { print("handler at", now()); }
        emit e.x;
        print("before await");
        await { durationMs: 100 };
        print("after await", now());
    """)
    assert r.lines == ["before await", "handler at 0", "after await 100"]


def test_each_handler_runs_until_its_own_first_suspension(cx: Any) -> None:
    r = cx("""
        on e.a (e) { print("a1"); emit e.c; await { durationMs: 1 }; print("a2"); }
        on e.b (e) { print("b1"); await { durationMs: 1 }; print("b2"); }
        on e.c (e) { print("c"); }
        emit e.a;
        emit e.b;
    """)
    # e.c was queued by a after b was already queued
    assert r.lines == ["a1", "b1", "c", "a2", "b2"]


def test_instances_subscribe_base_handlers_first(cx: Any) -> None:
    r = cx("""
        conscious Base { on e.x (e) { print("base", self.n); } }
        conscious Derived : Base { on e.x (e) { print("derived", self.n); } }
        on e.x (e) { print("top"); }
        new Derived({ n: 1 });
        new Base({ n: 2 });
        emit e.x;
    """)
    assert r.lines == ["top", "base 1", "derived 1", "base 2"]


def test_every_subscriber_gets_its_own_copy(cx: Any) -> None:
    r = cx("""
        on e.x (e) { e.a = "changed"; e.added = true; print(e); }
        on e.x (e) { print(e); }
        var p = { a: 1 };
        emit e.x p;
        emit e.y 42;
        on e.y (e) { print(e + 1); }
        on system.start (e) { print("original", p); }
    """)
    assert r.lines == ['{"a": "changed", "added": true}', '{"a": 1}', "43", 'original {"a": 1}']


def test_default_payload_is_an_empty_object(cx: Any) -> None:
    r = cx("""
        on e.x (e) { print(e, keys(e)); }
        emit e.x;
    """)
    assert r.lines == ["{} []"]


# --- system.start (rule 3), any (rule 4) --------------------------------------------------


def test_system_start_once_after_top_level_and_queued_work(cx: Any) -> None:
    r = cx("""
        on system.start (e) { print("start", e, now()); }
        on e.x (e) { print("x"); }
        emit e.x;
        await { durationMs: 50 };
        emit e.x;
        print("top done");
    """)
    assert r.lines == ["x", "top done", "x", "start {} 50"]


def test_system_start_runs_even_after_a_top_level_error(cx: Any) -> None:
    r = cx("""
        on system.start (e) { print("start"); }
        var x = null;
        print(x.y);
    """)
    assert r.code == 3
    assert r.lines == ["start"]


def test_any_matches_exactly_one_part(cx: Any) -> None:
    r = cx("""
        on user.any.input (e) { print("any", e.who); }
        on any.any (e) { print("two parts", e.who); }
        emit user.alice.input { who: "alice" };
        emit user.input { who: "two" };
        emit user.a.b.input { who: "four" };
    """)
    # `any.any` also receives the runtime's `system.start`
    assert r.lines == ["any alice", "two parts two", "two parts null"]


def test_any_in_handler_parameters_and_items(cx: Any) -> None:
    r = cx("""
        on job.any.run (e) { return "ran " + e.x; }
        var r = infer { x: 1, k: job.fast.run };
        print(r.k);
    """)
    assert r.lines == ["ran 1"]


def test_the_runtime_emits_nothing_else(cx: Any) -> None:
    r = cx("""
        on any.any (e) { print("seen"); }
        on any.any.any (e) { print("seen3"); }
        var x = 1;
    """)
    # only system.start
    assert r.lines == ["seen"]


# --- errors (rules 5, 6) ---------------------------------------------------------------


def test_error_aborts_only_its_handler_and_exit_is_3(cx: Any) -> None:
    r = cx("""
        on e.x (e) { print("a"); }
        on e.x (e) { print("b1"); var n = null; print(n.field); print("b2"); }
        on e.x (e) { await { durationMs: 10 }; print("c"); }
        emit e.x;
        print("top");
    """)
    assert r.code == 3
    assert r.lines == ["top", "a", "b1", "c"]
    assert "cannot read property `field` of null" in r.err
    assert "test.cx:3:" in r.err
    assert "Traceback" not in r.err


def test_runtime_error_in_realize_aborts_realize_only(cx: Any) -> None:
    r = cx("""
        conscious A {
            realize(self: conscious) { print("r1"); var x = 1 / 0; print("r2"); }
            on e.x (e) { print("handler", self.n); }
        }
        var a = new A({ n: 5 });
        print("got", a.n);
        emit e.x;
    """)
    assert r.code == 3
    assert r.lines == ["r1", "got 5", "handler 5"]


def test_each_runtime_error_is_reported(cx: Any) -> None:
    r = cx("""
        on e.x (e) { print(1 + null); }
        emit e.x;
        emit e.x;
    """)
    assert r.code == 3
    assert r.err.count("error") >= 2


def test_recorded_failures_leave_exit_code_0(cx: Any) -> None:
    r = cx("""
        on slow.b (e) { await { durationMs: 1000 }; }
        var r = think { prompt: "p", a: slow.b, b: none.b, timeout: 10 };
        print(keys(r._errors));
    """)
    assert r.code == 0
    assert r.lines == ['["result", "a", "b"]']


def test_virtual_timeout_exits_3(cx: Any) -> None:
    r = cx("""
        on tick.x (e) { await { durationMs: 1000 }; emit tick.x; }
        emit tick.x;
    """, timeout_ms=5000)
    assert r.code == 3


# --- printing (rules 22, 40) -------------------------------------------------------------


def test_number_printing(cx: Any) -> None:
    r = cx("""
        print(3, 1.5, 0.1 + 0.2, 0.0000001, 0.00000015, 0.000001, -0, 10 / 4, 1 / 3);
        print(100000000000000000000, 1000000000000000000000);
        print(2 * 3.0, -7 % 3, 7 % -3);
    """)
    assert r.lines == [
        "3 1.5 0.30000000000000004 1e-7 1.5e-7 0.000001 0 2.5 0.3333333333333333",
        "100000000000000000000 1e+21",
        "6 -1 1",
    ]


def test_json_printing(cx: Any) -> None:
    r = cx("""
        object P { }
        var p = new P({ name: "é", n: 1 });
        print({ a: 1, b: [1, 2.5, null, true], "c d": { x: "q\\"uote" } });
        print(p, [], {});
        print("raw string", "two");
        print();
        print("n=" + 1.0 + " o=" + ({ a: [1] }) + " " + null + " " + true);
    """)
    assert r.lines == [
        '{"a": 1, "b": [1, 2.5, null, true], "c d": {"x": "q\\"uote"}}',
        '{"name": "é", "n": 1} [] {}',
        "raw string two",
        "",
        'n=1 o={"a": [1]} null true',
    ]


def test_stdout_carries_only_print_output(cx: Any) -> None:
    r = cx("""
        var r = infer { k: nobody.home };
        emit also.nobody;
        print("only this");
    """)
    assert r.out == "only this\n"


# --- statements and values (rules 23, 25, 28) --------------------------------------------


def test_for_in_over_arrays_objects_strings(cx: Any) -> None:
    r = cx("""
        var out = [];
        for (var x in [1, "two", [3]]) { out[len(out)] = x; }
        for (var k in ({ b: 1, a: 2 })) { out[len(out)] = k; }
        for (var c in "hé!") { out[len(out)] = c; }
        print(out);
        var arr = [1, 2, 3];
        for (var v in arr) { arr[len(arr)] = v * 10; }
        print(arr);
        object E { }
        var e = new E({ p: 1, q: 2 });
        for (var f in e) { print(f); }
    """)
    assert r.lines == ['[1, "two", [3], "b", "a", "h", "é", "!"]', "[1, 2, 3, 10, 20, 30]",
                       "p", "q"]


def test_for_in_over_a_number_is_a_runtime_error(cx: Any) -> None:
    r = cx("""
        for (var x in 5) { print(x); }
        print("not reached");
    """)
    assert r.code == 3
    assert r.out == ""


def test_break_continue_while(cx: Any) -> None:
    r = cx("""
        var i = 0;
        var seen = [];
        while (true) {
            i += 1;
            if (i % 2 == 0) { continue; }
            if (i > 7) { break; }
            seen[len(seen)] = i;
        }
        print(seen);
    """)
    assert r.lines == ["[1, 3, 5, 7]"]


def test_truthiness_equality_and_operators(cx: Any) -> None:
    r = cx("""
        var empty = {};
        var o1 = { a: 1, b: 2 };
        var o2 = { b: 2, a: 1 };
        print(!![] && !!empty, !!"", !!0, null || "default", 0 && "x", 1 == "1");
        print(o1 == o2, [1, 2] == [1, 2], [1, 2] == [2, 1]);
        print("b" > "a", len("héllo"), num(" 12.5 "), num("1e3"), str(1.50), "abc".length);
        print([1, 2][5], "s".missing);
    """)
    assert r.lines == [
        "true false false default 0 false",
        "true true false",
        "true 5 12.5 null 1.5 3",
        "null null",
    ]


# --- entities (rules 29, 2.4.2) ----------------------------------------------------------


def test_new_realize_and_inheritance(cx: Any) -> None:
    r = cx("""
        conscious Base {
            realize(self: conscious, extra) {
                print("base realize", self.name, extra);
                var r = infer { prompt: "warm up" };
                self.ready = now();
            }
            on e.x (e) { print("base handler", self.name); }
        }
        conscious Mid : Base { }
        conscious Leaf : Mid {
            realize(me: conscious) { print("leaf realize", me.name, this.name == me.name); }
            on e.x (e) { print("leaf handler", self.name); }
        }
        var src = { name: "m" };
        var m = new Mid(src, "x");
        src.name = "changed";
        print("after new Mid", m.name, m.ready);
        var l = new Leaf({ name: "l" });
        print(l.ready);
        emit e.x;
    """)
    assert r.code == 0, r.err
    assert r.lines == [
        "base realize m x",
        "after new Mid m 300",
        "leaf realize l true",
        "null",
        "base handler m",
        "base handler l",
        "leaf handler l",
    ]


def test_new_without_argument_and_old_syntax(cx: Any) -> None:
    r = cx("""
        object A { realize(self: object, b) { print(keys(self), b); } }
        new A();
        new A { k: 1 };
    """)
    assert r.lines == ["[] null", '["k"] null']


def test_globals_are_visible_everywhere(cx: Any) -> None:
    r = cx("""
        on e.x (e) { print(counter); counter += 1; }
        emit e.x;
        var counter = 10;
        emit e.x;
        on system.start (e) { print("final", counter); }
    """)
    assert r.lines == ["10", "11", "final 12"]
