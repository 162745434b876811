"""§4.4 step by step, written in CX: fan-out, join, payload, `_errors`, items, stems."""

from __future__ import annotations

import json
from typing import Any

# --- step 1: props --------------------------------------------------------------------


def test_reserved_props_are_not_sent_nor_in_payload(cx: Any) -> None:
    r = cx("""
        on a.b (event) { return keys(event); }
        var r = infer { prompt: "p", n: 2, k: a.b, timeout: 500, retries: 1,
                        priority: "high", concurrency: 2, handlers: [ x.y ] };
        print(keys(r));
        print(r.k);
        on x.y (event) { print("item", keys(event)); }
    """)
    assert r.code == 0, r.err
    assert r.lines[0] == 'item ["prompt", "n", "result", "k", "_parallel"]'
    assert r.json(1) == ["prompt", "n", "result", "k", "_parallel"]
    # the branch's event is the request only
    assert r.json(2) == ["prompt", "n"]


# --- step 2: fan-out ------------------------------------------------------------------


def test_one_subscriber_gives_its_value(cx: Any) -> None:
    r = cx("""
        on a.b (event) { return { got: event.q }; }
        var r = infer { q: 7, k: a.b };
        print(r.k);
    """)
    assert r.lines == ['{"got": 7}']


def test_several_subscribers_give_an_array_in_subscription_order(cx: Any) -> None:
    r = cx("""
        on a.b (event) { await { durationMs: 30 }; return "first"; }
        on a.b (event) { return "second"; }
        object W { on a.b (event) { await { durationMs: 10 }; return self.n; } }
        new W({ n: "third" });
        var r = infer { q: 1, k: a.b };
        print(r.k);
        print(r._parallel.branches, r._parallel.succeeded);
    """)
    assert r.lines == ['["first", "second", "third"]', "1 1"]


def test_no_subscriber_is_a_failed_branch(cx: Any) -> None:
    r = cx("""
        var r = infer { q: 1, k: no.body };
        print(r.k);
        print(r._errors);
        print(r._parallel);
    """)
    assert r.code == 0
    assert r.lines[0] == "null"
    assert r.json(1) == {"k": {"type": "no_handler", "message": "no handler for `no.body`",
                               "event": "no.body", "attempts": 0}}
    p = r.json(2)
    assert (p["branches"], p["succeeded"], p["failed"]) == (1, 0, 1)
    # analysis warns about it, but it still runs
    assert any(not d.is_error and "no.body" in d.message for d in r.diagnostics)


def test_branch_event_is_a_copy_of_the_request_with_extra_merged(cx: Any) -> None:
    r = cx("""
        on a.b (event) { event.mutated = true; return event; }
        on c.d (event) { return event; }
        var r = infer { prompt: "p", x: 1, k1: a.b { x: 2, y: 3 }, k2: c.d };
        print(r.k1);
        print(r.k2);
        print(r.x);
    """)
    assert r.json(0) == {"prompt": "p", "x": 2, "y": 3, "mutated": True}
    assert list(r.json(0)) == ["prompt", "x", "y", "mutated"]
    assert r.json(1) == {"prompt": "p", "x": 1}
    assert r.lines[2] == "1"


def test_handler_without_return_succeeds_with_null(cx: Any) -> None:
    r = cx("""
        on a.b (event) { var x = 1; }
        var r = infer { k: a.b };
        print(r.k, r._parallel.failed, keys(r));
    """)
    assert r.lines == ['null 0 ["result", "k", "_parallel"]']


def test_fan_out_starts_everything_at_the_same_instant(cx: Any) -> None:
    r = cx("""
        on a.b (event) { var t = now(); await { durationMs: 500 }; return t; }
        on c.d (event) { var t = now(); await { durationMs: 200 }; return t; }
        await { durationMs: 1000 };
        var r = think { prompt: "p", k1: a.b, k2: c.d };
        print(r.k1, r.k2, now(), r._parallel.wall_ms, r._parallel.critical_ms);
    """)
    # starts at 1000; join at max(think 800, 500, 200)
    assert r.lines == ["1000 1000 1800 800 800"]


def test_subscriber_set_is_fixed_at_fan_out(cx: Any) -> None:
    r = cx("""
        object Late { on a.b (event) { return "late"; } }
        on a.b (event) { new Late({}); return "early"; }
        var r = infer { k: a.b };
        print(r.k);
        var r2 = infer { k: a.b };
        print(r2.k);
    """)
    assert r.lines == ['early', '["early", "late"]']


# --- step 3: join, timeouts, failures ---------------------------------------------------


def test_timed_out_branch_is_null_and_its_later_side_effects_never_happen(cx: Any) -> None:
    r = cx("""
        var log = [];
        on slow.one (event) {
            log[len(log)] = "started";
            await { durationMs: 300 };
            log[len(log)] = "after await";
            print("must not print");
            return "late";
        }
        on fast.one (event) { return "ok"; }
        var r = infer { prompt: "p", s: slow.one, f: fast.one, timeout: 100 };
        print(now());
        print(r.s, r.f);
        print(r._errors.s);
        await { durationMs: 1000 };
        print(log);
    """)
    assert r.code == 0
    # provider (300 ms) also timed out at 100
    assert r.lines[0] == "100"
    assert r.lines[1] == "null ok"
    assert r.json(2) == {"type": "timeout", "message": "`slow.one` timed out after 100 ms",
                         "event": "slow.one", "attempts": 1}
    assert r.json(3) == ["started"]
    assert "must not print" not in r.out


def test_timeout_cancels_nested_service_calls_but_not_emitted_handlers(cx: Any) -> None:
    r = cx("""
        on outer.b (event) {
            emit side.job;
            var r = infer { prompt: "inner", k: inner.b };
            print("outer continued");
            return r;
        }
        on inner.b (event) {
            await { durationMs: 50 };
            print("inner started its long wait");
            await { durationMs: 5000 };
            print("inner must not finish");
        }
        on side.job (event) {
            await { durationMs: 400 };
            print("side job finished at " + now());
        }
        on inferring.complete (event) { print("inner infer must not complete"); }
        var r = think { prompt: "p", o: outer.b, timeout: 200 };
        print("joined at " + now() + ": " + r._errors.o.type);
    """)
    assert r.code == 0, r.err
    assert r.lines == ["inner started its long wait", "joined at 200: timeout",
                       "side job finished at 400"]


def test_provider_failure_is_recorded_under_result(cx: Any) -> None:
    r = cx("""
        on a.b (event) { return 1; }
        var r = think { prompt: "p", k: a.b, handlers: [ x.y ] };
        print(r.result, r.k);
        print(r._errors);
        print(r._parallel.branches, r._parallel.failed);
        on x.y (event) { print("items still run"); }
        on thinking.error (event) { print("error event", event.failedHandlers); }
    """, fail_rate=1.0)
    assert r.code == 0
    assert r.lines[0] == "items still run"
    assert r.lines[1] == "null 1"
    errors = r.json(2)
    assert list(errors) == ["result"]
    assert errors["result"]["type"] == "provider"
    assert errors["result"]["event"] == "think"
    assert errors["result"]["attempts"] == 1
    # the provider call is not a branch
    assert r.lines[3] == "1 0"
    assert r.lines[4] == 'error event ["result"]'


def test_provider_retries_count_attempts(cx: Any) -> None:
    r = cx("""
        var r = infer { prompt: "p", retries: 2 };
        print(r._errors.result.attempts, r._errors.result.type);
        print(now());
    """, fail_rate=1.0)
    assert r.lines[0] == "3 provider"
    # 3 × 300 ms plus two backoffs of 100·2ⁿ ± 20 %
    t = float(r.lines[1])
    assert 900 + 80 + 160 <= t <= 900 + 120 + 240


def test_retry_succeeds_on_a_later_attempt(cx: Any) -> None:
    r = cx("""
        var n = 0;
        on flaky.b (event) {
            n += 1;
            if (n < 3) { await { durationMs: 1000 }; }
            return "attempt " + n;
        }
        var r = infer { prompt: "p", k: flaky.b, timeout: 400, retries: 2 };
        print(r.k, keys(r));
        print(r._parallel.succeeded, r._parallel.failed);
    """)
    assert r.code == 0
    assert r.lines == ['attempt 3 ["prompt", "result", "k", "_parallel"]', "1 0"]


def test_retries_exhausted_give_attempts_retries_plus_one(cx: Any) -> None:
    r = cx("""
        on slow.b (event) { await { durationMs: 1000 }; }
        var r = infer { prompt: "p", k: slow.b, timeout: 100, retries: 3 };
        print(r._errors.k.attempts, r._errors.k.type);
    """)
    assert r.lines == ["4 timeout"]


def test_failing_branch_is_type_error_and_a_reported_runtime_error(cx: Any) -> None:
    r = cx("""
        on bad.b (event) { var x = null; return x.y; }
        on good.b (event) { return "fine"; }
        var r = infer { prompt: "p", bad: bad.b, good: good.b };
        print(r.bad, r.good, r._errors.bad.type, r._errors.bad.event);
    """)
    assert r.code == 3
    assert r.lines == ["null fine error bad.b"]
    assert "test.cx:2" in r.err


def test_several_subscribers_some_failing(cx: Any) -> None:
    r = cx("""
        on v.b (event) { return 1; }
        on v.b (event) { await { durationMs: 900 }; return 2; }
        on v.b (event) { return 3; }
        on v.b (event) { await { durationMs: 900 }; return 4; }
        var r = infer { prompt: "p", k: v.b, timeout: 500 };
        print(r.k);
        print(r._errors.k);
        print(r._parallel.succeeded, r._parallel.failed);
    """)
    assert r.code == 0
    assert r.lines[0] == "[1, null, 3, null]"
    e = r.json(1)
    assert e["type"] == "timeout" and e["event"] == "v.b" and e["attempts"] == 4
    assert "[1, 3]" in e["message"]
    assert r.lines[2] == "0 1"


def test_all_subscribers_failing_still_give_an_array(cx: Any) -> None:
    r = cx("""
        on v.b (event) { await { durationMs: 900 }; }
        on v.b (event) { await { durationMs: 900 }; }
        var r = infer { k: v.b, timeout: 100 };
        print(r.k, r._errors.k.attempts);
    """)
    assert r.lines == ["[null, null] 2"]


def test_concurrency_one_serialises_branches(cx: Any) -> None:
    r = cx("""
        on t.b (event) { var s = now(); await { durationMs: 100 }; return s; }
        var r = execute { command: "c", a: t.b, b: t.b, c: t.b, concurrency: 1, timeout: 150 };
        print(r.a, r.b, r.c, now(), r._parallel.failed);
        var r2 = execute { command: "c", a: t.b, b: t.b, c: t.b };
        print(r2.a, r2.b, r2.c, now());
    """)
    # the provider (execute 200 ms) does not count toward `concurrency`; queued branches
    # start their timeout when they start, so none of them times out
    assert r.lines == ["0 100 200 300 0", "300 300 300 500"]


def test_concurrency_two_with_several_subscribers(cx: Any) -> None:
    r = cx("""
        on t.b (event) { var s = now(); await { durationMs: 100 }; return s; }
        on t.b (event) { var s = now(); await { durationMs: 100 }; return s; }
        var r = iam { prompt: "x", a: t.b, b: t.b, concurrency: 2 };
        print(r.a, r.b);
    """)
    assert r.lines == ["[0, 0] [100, 100]"]


def test_nested_fan_out_inside_a_branch(cx: Any) -> None:
    r = cx("""
        on leaf.b (event) { await { durationMs: event.ms }; return event.ms; }
        on mid.b (event) {
            var inner = infer { prompt: "inner", x: leaf.b { ms: 100 }, y: leaf.b { ms: 700 } };
            return [inner.x, inner.y, inner._parallel.wall_ms, now()];
        }
        var r = think { prompt: "outer", m: mid.b, timeout: 2000 };
        print(r.m, r._parallel.wall_ms, now());
    """)
    assert r.lines == ["[100, 700, 700, 700] 800 800"]


def test_recursion_through_branches_is_bounded_at_depth_64(cx: Any) -> None:
    r = cx("""
        var deepest = 0;
        on rec.b (event) {
            deepest = event.n;
            var r = infer { prompt: "r", n: event.n + 1, k: rec.b };
            if (r._errors != null && r._errors.k.type == "depth") {
                print("depth error at n=" + event.n + ": " + r._errors.k.message);
            }
            return event.n;
        }
        var r = infer { prompt: "r", n: 1, k: rec.b };
        print(deepest, r.k);
    """, latency={"infer": 0.0})
    assert r.code == 0, r.err
    assert r.lines[0].startswith("depth error at n=64")
    assert r.lines[1] == "64 1"


def test_depth_error_shape(cx: Any) -> None:
    r = cx("""
        on rec.b (event) {
            var r = infer { prompt: "r", k: rec.b };
            if (r._errors != null) { print(r._errors.k); }
        }
        infer { prompt: "r", k: rec.b };
    """, latency={"infer": 0.0})
    e = r.json(0)
    assert set(e) == {"type", "message", "event", "attempts"}
    assert (e["type"], e["event"], e["attempts"]) == ("depth", "rec.b", 0)


# --- payload shape (rules 7, 8, 10, 37) -------------------------------------------------


def test_payload_key_order(cx: Any) -> None:
    r = cx("""
        on z.b (event) { return 1; }
        on a.b (event) { await { durationMs: 5000 }; }
        var r = infer { zeta: 1, alpha: 2, z: z.b, a: a.b, m: m.none, mid: 3, timeout: 100 };
        print(keys(r));
        print(keys(r._errors));
        print(keys(r._parallel));
    """)
    assert r.json(0) == ["zeta", "alpha", "mid", "result", "z", "a", "m", "_errors", "_parallel"]
    assert r.json(1) == ["result", "a", "m"]
    assert r.json(2) == ["branches", "succeeded", "failed", "wall_ms", "critical_ms"]


def test_no_errors_key_when_nothing_failed(cx: Any) -> None:
    r = cx("""
        var r = infer { prompt: "p" };
        print(keys(r), r._errors);
        print(r._parallel);
    """)
    assert r.lines[0] == '["prompt", "result", "_parallel"] null'
    assert r.json(1) == {"branches": 0, "succeeded": 0, "failed": 0, "wall_ms": 300,
                         "critical_ms": 300}


def test_errors_entry_shape(cx: Any) -> None:
    r = cx("""
        on t.b (event) { await { durationMs: 500 }; }
        var r = learn { data: 1, a: t.b, timeout: 10 };
        print(r._errors);
    """)
    assert r.json(0) == {
        "result": {"type": "timeout", "message": "`learn` timed out after 10 ms",
                   "event": "learn", "attempts": 1},
        "a": {"type": "timeout", "message": "`t.b` timed out after 10 ms", "event": "t.b",
              "attempts": 1},
    }


def test_reserved_payload_keys_are_compile_errors() -> None:
    from tests.semantics.conftest import diagnostics

    for prop in ("result: 1", "_errors: 2", "_parallel: 3", "result: a.b"):
        diags = diagnostics("on a.b (e) { return 1; }\ninfer { " + prop + " };\n")
        assert any(d.is_error for d in diags), prop


# --- step 4: handlers items (rules 13, 37) ----------------------------------------------


def test_items_run_in_order_each_awaited(cx: Any) -> None:
    r = cx("""
        on i.one (event) { await { durationMs: 100 }; print("one", now()); }
        on i.one (event) { await { durationMs: 300 }; print("one'", now()); }
        on i.two (event) { print("two", now()); }
        on i.three (event) { await { durationMs: 50 }; print("three", now()); }
        infer { prompt: "p", handlers: [ i.one, i.two, i.none, i.three ] };
        print("call done", now());
    """)
    assert r.lines == ["one 400", "one' 600", "two 600", "three 650", "call done 650"]


def test_item_extras_merge_on_a_fresh_copy(cx: Any) -> None:
    r = cx("""
        on i.a (event) { print(event); event.result = "changed"; event.added = 1; }
        on i.b (event) { print(event); }
        var r = infer { prompt: "p", x: 1, k: k.b,
                        handlers: [ i.a { x: 2, extra: "e" }, i.b { result: "over" } ] };
        on k.b (event) { return "kv"; }
        print(keys(r), r.x, r.result);
    """)
    a, b = r.json(0), r.json(1)
    assert list(a) == ["prompt", "x", "result", "k", "_parallel", "extra"]
    assert a["x"] == 2 and a["extra"] == "e" and a["result"] == "[infer] p"
    assert list(b) == ["prompt", "x", "result", "k", "_parallel"]
    assert b["result"] == "over" and b["x"] == 1
    assert r.lines[2] == '["prompt", "x", "result", "k", "_parallel"] 1 [infer] p'


def test_item_extras_are_evaluated_before_the_call(cx: Any) -> None:
    r = cx("""
        var n = 1;
        on bump.b (event) { n = 100; return n; }
        on i.a (event) { print(event.seen); }
        infer { prompt: "p", k: bump.b, handlers: [ i.a { seen: n } ] };
    """)
    assert r.lines == ["1"]


def test_failing_item_does_not_stop_later_items(cx: Any) -> None:
    r = cx("""
        on i.a (event) { var x = null; print(x.y); }
        on i.b (event) { print("b ran"); }
        infer { prompt: "p", handlers: [ i.a, i.b ] };
        print("after");
    """)
    assert r.code == 3
    assert r.lines == ["b ran", "after"]


def test_timeout_does_not_apply_to_items(cx: Any) -> None:
    r = cx("""
        on i.a (event) { await { durationMs: 1000 }; print("item finished", now()); }
        infer { prompt: "p", timeout: 400, handlers: [ i.a ] };
        print("done", now());
    """)
    assert r.lines == ["item finished 1300", "done 1300"]


# --- step 5: stem events (rule 13) ------------------------------------------------------


def test_complete_then_error_after_the_items(cx: Any) -> None:
    r = cx("""
        on i.a (event) { print("item"); }
        on inferring.complete (event) { print("complete", keys(event)); }
        on inferring.error (event) { print("error", event); }
        var r = infer { prompt: "p", a: a.none, handlers: [ i.a ] };
        print("value");
    """)
    assert r.lines[0] == "item"
    # the emitted events run at the caller's next suspension (here: end of top level)
    assert r.lines[1] == "value"
    assert r.lines[2] == 'complete ["prompt", "result", "a", "_errors", "_parallel"]'
    err_line = r.lines[3]
    assert err_line.startswith("error ")
    payload = json.loads(err_line[len("error "):])
    assert list(payload) == ["failedHandlers", "errors"]
    assert payload["failedHandlers"] == ["a"]
    assert payload["errors"]["a"]["type"] == "no_handler"


def test_stem_names(cx: Any) -> None:
    r = cx("""
        on thinking.complete (e) { print("thinking"); }
        on inferring.complete (e) { print("inferring"); }
        on learning.complete (e) { print("learning"); }
        on adapting.complete (e) { print("adapting"); }
        on executing.complete (e) { print("executing"); }
        on awaiting.complete (e) { print("awaiting"); }
        on iam.complete (e) { print("iam"); }
        on is.complete (e) { print("is"); }
        on not.complete (e) { print("not"); }
        on system.start (e) {
            think { prompt: "p" }; infer { prompt: "p" }; learn { prompt: "p" };
            adapt { prompt: "p" }; execute { prompt: "p" }; await { durationMs: 1 };
            iam { prompt: "p" }; is { prompt: "p" }; not { prompt: "p" };
        }
    """)
    assert r.lines == ["thinking", "inferring", "learning", "adapting", "executing",
                       "awaiting", "iam", "is", "not"]


def test_no_error_event_without_failures(cx: Any) -> None:
    r = cx("""
        on inferring.error (e) { print("unexpected"); }
        on inferring.complete (e) { print("ok"); }
        infer { prompt: "p" };
    """)
    assert r.lines == ["ok"]


# --- step 6 and the other services ------------------------------------------------------


def test_call_as_expression_is_the_payload(cx: Any) -> None:
    r = cx("""
        print((infer { prompt: "p" }).result);
        var s = think { text: "hello" };
        print(s.result);
    """)
    assert r.lines == ["[infer] p", "[think] hello"]


def test_is_and_not_are_complementary(cx: Any) -> None:
    r = cx("""
        var yes = 0;
        var no = 0;
        on r.yes (e) { yes += 1; }
        on r.no (e) { no += 1; }
        var i = 0;
        while (i < 20) {
            is { prompt: "q" + i, handlers: [ r.yes ] };
            not { prompt: "q" + i, handlers: [ r.no ] };
            i += 1;
        }
        print(yes + no, yes > 0, no > 0);
        var c = is { condition: false, handlers: [ r.yes ] };
        var d = not { data: { condition: false }, handlers: [ r.no ] };
        print(c.result, d.result, yes + no);
    """)
    assert r.lines == ["20 true true", "false false 21"]


def test_is_provider_failure_delivers_neither(cx: Any) -> None:
    r = cx("""
        on r.yes (e) { print("yes"); }
        on r.no (e) { print("no"); }
        on b.b (e) { return "branch ran"; }
        var x = is { condition: true, k: b.b, handlers: [ r.yes ] };
        var y = not { condition: false, handlers: [ r.no ] };
        print(x.k, x.result, y.result);
    """, fail_rate=1.0)
    assert r.lines == ["branch ran null null"]


def test_await_sleeps_exactly_and_timeout_only_cuts_branches(cx: Any) -> None:
    r = cx("""
        on b.b (e) { await { durationMs: 1000 }; return 1; }
        var r = await { durationMs: 300, k: b.b, timeout: 100 };
        print(now(), r.result, r.k, r._errors.k.type);
        var s = await { minDurationMs: 10, maxDurationMs: 20 };
        print(s.result >= 10 && s.result <= 20, now() == 300 + s.result);
    """, fail_rate=1.0)
    # `await` never calls the provider, so fail_rate does not touch it
    assert r.lines == ["300 300 null timeout", "true true"]


def test_learn_self_stores_into_memory(cx: Any) -> None:
    r = cx("""
        conscious A {
            realize(self: conscious) {
                var a = learn self;
                var b = learn { fact: 2 };
                print(a.result, b.result, keys(a));
            }
        }
        new A({ name: "x", n: 1 });
        var v = learn 5;
        print(keys(v));
    """)
    assert r.lines == ['1 2 ["name", "n", "result", "_parallel"]', '["value", "result", "_parallel"]']
