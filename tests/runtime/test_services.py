"""Service calls and parallel handler parameters (SPEC §4.4–4.5, rules 7–21, 33–37)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cxpar.runtime import CxRuntimeError, SimProvider, service
from cxpar.runtime import values as V
from cxpar.runtime.breaker import BreakerConfig

from .conftest import run


def ret(value: Any, delay: float = 0.0, log: str | None = None) -> Any:
    async def h(rt: Any, self: Any, ev: Any) -> Any:
        if delay:
            await asyncio.sleep(delay)
        if log:
            rt.print(log, rt.now())
        return value
    return h


def test_payload_order_values_and_parallel_metadata() -> None:
    events: list[Any] = []

    async def seen(rt: Any, self: Any, ev: Any) -> Any:
        events.append(ev)
        return "s"

    async def noret(rt: Any, self: Any, ev: Any) -> None:
        pass

    async def complete(rt: Any, self: Any, ev: Any) -> None:
        rt.print("complete", list(ev))

    async def error(rt: Any, self: Any, ev: Any) -> None:
        rt.print("error", ev["failedHandlers"], list(ev["errors"]))

    async def main(rt: Any) -> None:
        rt.on("sent.an", seen)
        rt.on("multi", ret(1.0, 0.2))
        rt.on("multi", ret(2.0, 0.5))
        rt.on("nothing", noret)
        rt.on("thinking.complete", complete)
        rt.on("thinking.error", error)
        req = {"prompt": "P", "n": 1.0}
        p = await rt.service("think", 0, req,
                             [("sentiment", "sent.an", {"extra": True}),
                              ("multi", "multi", None), ("none", "nothing", None),
                              ("missing", "no.one", None)])
        rt.print(p)
        rt.print(rt.now())

    r = run(main)
    assert r.code == 0
    assert events == [{"prompt": "P", "n": 1.0, "extra": True}]
    assert r.lines[0] == V.to_json({
        "prompt": "P", "n": 1, "result": "[think] P", "sentiment": "s", "multi": [1, 2],
        "none": None, "missing": None,
        "_errors": {"missing": {"type": "no_handler", "message": "no handler for `no.one`",
                                "event": "no.one", "attempts": 0}},
        "_parallel": {"branches": 4, "succeeded": 3, "failed": 1, "wall_ms": 800,
                      "critical_ms": 800}})
    assert r.lines[1:] == [
        "800",
        'complete ["prompt", "n", "result", "sentiment", "multi", "none", "missing", '
        '"_errors", "_parallel"]',
        'error ["missing"] ["missing"]']


def test_fan_out_runs_in_parallel_and_in_order() -> None:
    async def main(rt: Any) -> None:
        rt.on("a", ret("A", 0.1, "a"))
        rt.on("b", ret("B", 0.1, "b"))
        rt.on("c", ret("C", 0.1, "c"))
        p = await rt.service("infer", 0, {}, [("x", "a", None), ("y", "b", None),
                                              ("z", "c", None)])
        rt.print(p["_parallel"])

    r = run(main, provider=SimProvider(latency_ms={"infer": 50}))
    assert r.lines == ["a 100", "b 100", "c 100",
                       '{"branches": 3, "succeeded": 3, "failed": 0, "wall_ms": 100, '
                       '"critical_ms": 100}']


def test_concurrency_one_serialises_branches() -> None:
    async def main(rt: Any) -> None:
        for k in "abc":
            rt.on(k, ret(k, 0.1, k))
        p = await rt.service("iam", 0, {}, [("x", "a", None), ("y", "b", None),
                                            ("z", "c", None)], concurrency=1.0, timeout=150.0)
        rt.print(p["_parallel"]["wall_ms"], p.get("_errors"))

    r = run(main)
    assert r.lines == ["a 100", "b 200", "c 300", "300 null"]


def test_timeout_cancels_branch_and_everything_nested() -> None:
    async def inner(rt: Any, self: Any, ev: Any) -> Any:
        await asyncio.sleep(1)
        rt.print("INNER SIDE EFFECT")
        return 1.0

    async def slow(rt: Any, self: Any, ev: Any) -> Any:
        rt.emit("indep")
        await rt.service("think", 0, {"prompt": "nested"}, [("i", "inner", None)])
        rt.print("SLOW SIDE EFFECT")
        return "late"

    async def indep(rt: Any, self: Any, ev: Any) -> None:
        await asyncio.sleep(2)
        rt.print("independent emit still ran", rt.now())

    async def main(rt: Any) -> None:
        rt.on("slow", slow)
        rt.on("inner", inner)
        rt.on("indep", indep)
        rt.on("fast", ret("ok", 0.05))
        p = await rt.service("infer", 0, {"q": 1.0}, [("s", "slow", None), ("f", "fast", None)],
                             timeout=500.0)
        rt.print(rt.now(), p["s"], p["f"], p["_errors"])

    r = run(main)
    assert r.code == 0
    assert r.lines == [
        '500 null ok {"s": {"type": "timeout", "message": "`slow` timed out after 500 ms", '
        '"event": "slow", "attempts": 1}}',
        "independent emit still ran 2000"]


def test_provider_failure_and_timeout_are_data_not_errors() -> None:
    async def main(rt: Any) -> None:
        rt.on("b", ret(1.0))
        p = await rt.service("think", 0, {"prompt": "x"}, [("k", "b", None)])
        rt.print(p["result"], p["k"], p["_errors"], p["_parallel"]["failed"])

    r = run(main, provider=SimProvider(fail_rate=1.0))
    assert r.code == 0
    assert r.lines == ['null 1 {"result": {"type": "provider", "message": "`think` failed: '
                       'simulated think failure", "event": "think", "attempts": 1}} 0']
    r = run(main, provider=SimProvider(timeout_rate=1.0))
    assert r.code == 0 and '"type": "timeout"' in r.out and "30000 ms" in r.out


def test_retry_succeeds_on_second_attempt_with_backoff() -> None:
    calls: list[float] = []

    async def flaky(rt: Any, self: Any, ev: Any) -> Any:
        calls.append(rt.now())
        if len(calls) == 1:
            await asyncio.sleep(10)  # first attempt times out
        return "second"

    async def main(rt: Any) -> None:
        rt.on("f", flaky)
        p = await rt.service("iam", 0, {}, [("k", "f", None)], timeout=200.0, retries=2.0)
        rt.print(p["k"], "_errors" in p, p["_parallel"])

    r = run(main)
    assert r.code == 0
    assert r.lines[0].startswith('second false {"branches": 1, "succeeded": 1, "failed": 0')
    assert calls[0] == 0 and 200 + 80 <= calls[1] <= 200 + 120


def test_retry_after_runtime_error_reports_each_and_counts_attempts() -> None:
    n = {"i": 0}

    async def bad(rt: Any, self: Any, ev: Any) -> Any:
        n["i"] += 1
        raise CxRuntimeError("boom", -1)

    async def main(rt: Any) -> None:
        rt.on("b", bad)
        p = await rt.service("iam", 0, {}, [("k", "b", None)], retries=2.0)
        rt.print(p["_errors"])

    r = run(main)
    assert r.code == 3 and n["i"] == 3 and r.err.count("error[CX500]: boom") == 1
    assert r.err.count("warning[CX500]: attempt ") == 2  # retried attempts: warnings
    assert r.lines == ['{"k": {"type": "error", "message": "boom", "event": "b", "attempts": 3}}']


def test_provider_retry_and_circuit_breaker() -> None:
    async def main(rt: Any) -> None:
        for _ in range(4):
            p = await rt.service("think", 0, {"prompt": "x"}, retries=1.0)
            rt.print(p["_errors"]["result"]["type"], p["_errors"]["result"]["attempts"])

    r = run(main, provider=SimProvider(fail_rate=1.0), breaker=BreakerConfig(threshold=3))
    # 3 consecutive failures open the breaker (the 2nd call's 1st attempt is the 3rd)
    assert r.lines == ["provider 2", "circuit_open 1", "circuit_open 0", "circuit_open 0"]


def test_several_subscribers_partial_and_total_failure() -> None:
    async def main(rt: Any) -> None:
        rt.on("m", ret("one"))
        rt.on("m", ret("slow", 5))
        rt.on("m", ret("three"))
        rt.on("z", ret(1, 5))
        rt.on("z", ret(2, 5))
        p = await rt.service("iam", 0, {}, [("m", "m", None), ("z", "z", None)],
                             timeout=100.0)
        rt.print(p["m"], p["z"])
        rt.print(p["_errors"])

    r = run(main, provider=SimProvider(latency_ms={"iam": 50}))
    assert r.lines == [
        '["one", null, "three"] [null, null]',
        '{"m": {"type": "timeout", "message": "subscribers [1] of `m` failed: `m` timed out '
        'after 100 ms", "event": "m", "attempts": 3}, "z": {"type": "timeout", "message": '
        '"subscribers [0, 1] of `z` failed: `z` timed out after 100 ms", "event": "z", '
        '"attempts": 2}}']


def test_recursion_depth_bound() -> None:
    count = {"n": 0}

    async def rec(rt: Any, self: Any, ev: Any) -> Any:
        count["n"] += 1
        p = await rt.service("iam", 0, {}, [("r", "rec", None)])
        return p["_errors"]["r"]["type"] if "_errors" in p else "deeper"

    async def main(rt: Any) -> None:
        rt.on("rec", rec)
        p = await rt.service("iam", 0, {}, [("r", "rec", None)])
        rt.print(p["r"], count["n"])

    r = run(main, provider=SimProvider(latency_ms={"iam": 0}))
    assert r.lines == ["deeper 64"]


def test_handlers_items_sequential_with_extras_and_skips() -> None:
    async def item(name: str, delay: float, fail: bool = False) -> Any:
        async def h(rt: Any, self: Any, ev: Any) -> None:
            rt.print("start", name, rt.now(), list(ev), ev.get("result"), ev.get("tag"))
            await asyncio.sleep(delay)
            if fail:
                raise CxRuntimeError("item failed", -1)
            rt.print("end", name, rt.now())
        return h

    async def complete(rt: Any, self: Any, ev: Any) -> None:
        rt.print("complete", rt.now())

    async def main(rt: Any) -> None:
        rt.on("one", await item("one", 0.1, fail=True))
        rt.on("one", await item("one-b", 0.2))
        rt.on("two", await item("two", 0.1))
        rt.on("inferring.complete", complete)
        p = await rt.service("infer", 0, {"q": 1.0},
                             items=[("one", None), ("nobody", None),
                                    ("two", {"result": "over", "tag": "t"})])
        rt.print("returned", rt.now(), p["result"])

    r = run(main)
    assert r.code == 3
    assert r.lines == [
        'start one 300 ["q", "result", "_parallel"] [infer] {"q": 1} null',
        'start one-b 300 ["q", "result", "_parallel"] [infer] {"q": 1} null',
        "end one-b 500",
        'start two 500 ["q", "result", "_parallel", "tag"] over t',
        "end two 600",
        "returned 600 [infer] {\"q\": 1}",
        "complete 600"]


def test_is_and_not_are_complementary() -> None:
    async def yes(rt: Any, self: Any, ev: Any) -> None:
        rt.print("delivered", ev["svc"], ev["result"])

    async def br(rt: Any, self: Any, ev: Any) -> Any:
        return "branch ran"

    async def main(rt: Any) -> None:
        rt.on("d", yes)
        rt.on("b", br)
        for req in ({"condition": True}, {"data": {"condition": False}}, {"x": "hash me"},
                    {"x": "another"}):
            for svc in ("is", "not"):
                p = await rt.service(svc, 0, dict(req, svc=svc), [("k", "b", None)],
                                     [("d", None)])
                assert p["k"] == "branch ran"

    r = run(main)
    lines = r.lines
    assert lines[0] == "delivered is true" and lines[1] == "delivered not false"
    assert len(lines) == 4  # exactly one of is/not per request


def test_is_provider_failure_delivers_nothing() -> None:
    async def d(rt: Any, self: Any, ev: Any) -> None:
        rt.print("delivered")

    async def complete(rt: Any, self: Any, ev: Any) -> None:
        rt.print("complete", ev["result"])

    async def main(rt: Any) -> None:
        rt.on("d", d)
        rt.on("is.complete", complete)
        rt.on("not.complete", complete)
        await rt.service("is", 0, {"condition": True}, items=[("d", None)])
        await rt.service("not", 0, {"condition": False}, items=[("d", None)])

    assert run(main, provider=SimProvider(fail_rate=1.0)).lines == ["complete null",
                                                                    "complete null"]


def test_await_service_sleeps_exactly_and_timeout_only_for_branches() -> None:
    async def main(rt: Any) -> None:
        rt.on("b", ret("late", 1.0))
        p = await rt.service("await", 0, {"durationMs": 2000.0}, [("k", "b", None)],
                             timeout=100.0)
        rt.print(rt.now(), p["result"], p["_errors"]["k"]["type"])
        p = await rt.service("await", 0, {"minDurationMs": 10.0, "maxDurationMs": 20.0})
        rt.print(10 <= p["result"] <= 20, p["result"] == int(p["result"]))
        try:
            await rt.service("await", 5, {"durationMs": "x"})
        except CxRuntimeError as e:
            rt.print(e.span_id)

    r = run(main)
    assert r.lines == ["2000 2000 timeout", "true true", "5"]


def test_learn_self_request_and_plugin_services() -> None:
    @service("summarize", "summarizing")
    async def summarize(request: dict[str, Any], context: Any) -> Any:
        await asyncio.sleep(0.05)
        return "sum:" + str(request.get("text"))

    async def done(rt: Any, self: Any, ev: Any) -> None:
        rt.print("done", ev["result"])

    async def main(rt: Any) -> None:
        rt.on("summarizing.complete", done)
        rt.define_class("A", None, None, [])
        a = await rt.new("A", [{"k": 1.0}])
        p = await rt.service("learn", 0, V.to_request(a), caller=a)
        rt.print(p, a.memory)
        p = await rt.service("summarize", 0, {"text": "t"})
        rt.print(p["result"], rt.now())
        rt.register_service("classify", "classifying")
        p = await rt.service("classify", 0, {"prompt": "c"})
        rt.print(p["result"])
        try:
            await rt.service("nope", 9, {})
        except CxRuntimeError as e:
            rt.print(e.message, e.span_id)

    r = run(main)
    assert r.lines == [
        '{"k": 1, "result": 1, "_parallel": {"branches": 0, "succeeded": 0, "failed": 0, '
        '"wall_ms": 200, "critical_ms": 200}} [{"k": 1}]',
        "sum:t 250", "done sum:t", "[classify] c", "unknown service `nope` 9"]


@pytest.mark.parametrize("schedule", ["fifo", "program"])
def test_priority_orders_queued_provider_calls_under_global_limit(schedule: str) -> None:
    async def caller(rt: Any, self: Any, ev: Any) -> None:
        await rt.service("iam", 0, {"name": ev["name"]}, priority=ev["prio"])
        rt.print("done", ev["name"], rt.now())

    async def main(rt: Any) -> None:
        rt.on("c", caller)
        rt.emit("c", {"name": "low", "prio": "low"})
        rt.emit("c", {"name": "n1", "prio": "normal"})
        rt.emit("c", {"name": "high", "prio": "high"})
        rt.emit("c", {"name": "n2", "prio": 0.0})

    from cxpar.runtime.adaptive import LimitsConfig

    r = run(main, max_concurrency=1, provider=SimProvider(latency_ms={"iam": 100}),
            limits=LimitsConfig(schedule=schedule))
    if schedule == "fifo":  # `low` asks first and gets the free slot; then priority, FIFO
        assert r.lines == ["done low 100", "done high 200", "done n1 300", "done n2 400"]
    else:  # calls issued at one instant all compete for the free slot
        assert r.lines == ["done high 100", "done n1 200", "done n2 300", "done low 400"]


def test_branches_never_hold_a_global_slot() -> None:
    async def work(rt: Any, self: Any, ev: Any) -> Any:
        rt.print("branch", ev["name"], rt.now())
        await asyncio.sleep(0.1)
        return None

    async def main(rt: Any) -> None:
        rt.on("w", work)
        await asyncio.gather(*(rt.service("await", 0, {"name": n}, [("k", "w", None)])
                               for n in "abc"))

    r = run(main, max_concurrency=1)
    # rule 45: the limit counts provider calls only; handlers all start at once
    assert r.lines == ["branch a 0", "branch b 0", "branch c 0"]
