"""Emits, ordering, entities, clock, errors and exit codes (rules 1–6, 14, 18, 29)."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Any

from cxpar.runtime import CxRuntimeError, Instance, new_loop
from cxpar.span import Span

from .conftest import run


def test_emit_only_queues_fifo_order() -> None:
    async def h(name: str) -> Any:
        async def fn(rt: Any, self: Any, ev: Any) -> None:
            rt.print(name, ev["n"])
            await asyncio.sleep(0)
            rt.print(name, "resumed", ev["n"])
        return fn

    async def main(rt: Any) -> None:
        rt.on("a", await h("a1"))
        rt.on("b", await h("b1"))
        rt.on("a", await h("a2"))
        rt.emit("a", {"n": 1.0})
        rt.emit("b", {"n": 2.0})
        rt.print("top still running")

    r = run(main)
    assert r.lines == ["top still running", "a1 1", "a2 1", "b1 2",
                       "a1 resumed 1", "a2 resumed 1", "b1 resumed 2"]
    assert r.code == 0


def test_system_start_once_after_top_level_and_wildcard() -> None:
    async def start(rt: Any, self: Any, ev: Any) -> None:
        rt.print("start", ev)
        rt.emit("user.alice.input", {"t": "hi"})
        rt.emit("user.bob.extra.input")

    async def anyh(rt: Any, self: Any, ev: Any) -> None:
        rt.print("any", ev)

    async def exact(rt: Any, self: Any, ev: Any) -> None:
        rt.print("exact", ev)

    async def main(rt: Any) -> None:
        rt.on("system.start", start)
        rt.on("user.any.input", anyh)
        rt.on("user.alice.input", exact)
        rt.print("top")

    r = run(main)
    assert r.lines == ["top", "start {}", 'any {"t": "hi"}', 'exact {"t": "hi"}']


def test_each_subscriber_gets_own_copy() -> None:
    async def mut(rt: Any, self: Any, ev: Any) -> None:
        ev["x"] = 99.0
        rt.print("mut", ev)

    async def look(rt: Any, self: Any, ev: Any) -> None:
        rt.print("look", ev)

    async def raw(rt: Any, self: Any, ev: Any) -> None:
        rt.print("raw", ev)

    async def main(rt: Any) -> None:
        rt.on("e", mut)
        rt.on("e", look)
        rt.on("v", raw)
        p = {"x": 1.0}
        rt.emit("e", p)
        rt.emit("v", 5.0)
        await asyncio.sleep(0)
        rt.print("orig", p)

    assert run(main).lines == ['mut {"x": 99}', 'look {"x": 1}', "raw 5", 'orig {"x": 1}']


def test_virtual_clock_now_timers_and_speed() -> None:
    async def main(rt: Any) -> None:
        rt.print(rt.now())
        loop = asyncio.get_running_loop()
        for i in range(5):
            loop.call_later(0.5, rt.print, "timer", i)
        await rt.service("await", 0, {"durationMs": 30000.0})
        rt.print(rt.now())
        async with asyncio.timeout(1.0):
            await asyncio.sleep(0.3)
        rt.print(rt.now())

    r = run(main)
    assert r.lines == ["0"] + [f"timer {i}" for i in range(5)] + ["30000", "30300"]


def test_same_seed_same_output_virtual_determinism() -> None:
    async def worker(rt: Any, self: Any, ev: Any) -> Any:
        await asyncio.sleep(rt.random())
        rt.print("w", ev["i"], rt.now())
        return rt.random()

    async def main(rt: Any) -> None:
        rt.on("w", worker)
        for i in range(4):
            p = await rt.service("think", 0, {"prompt": str(i), "i": float(i)},
                                 [("a", "w", None)], retries=1.0)
            rt.print(p["result"], p["a"], p.get("_errors"))

    from cxpar.runtime import SimProvider
    a = run(main, seed=7, provider=SimProvider(7, fail_rate=0.5))
    b = run(main, seed=7, provider=SimProvider(7, fail_rate=0.5))
    c = run(main, seed=8, provider=SimProvider(8, fail_rate=0.5))
    assert a.out == b.out and a.out != c.out


def test_runtime_error_aborts_only_its_handler_and_renders_span() -> None:
    src = "on boom (e) {\n    var x = 1 / 0;\n}\n"
    spans = [Span("prog.cx", 2, 13, 2, 18)]

    async def boom(rt: Any, self: Any, ev: Any) -> None:
        rt.print("before")
        raise CxRuntimeError("division by zero", 0)

    boom.__qualname__ = "on boom"  # as generated handlers are named

    async def other(rt: Any, self: Any, ev: Any) -> None:
        await asyncio.sleep(1)
        rt.print("other done")

    async def main(rt: Any) -> None:
        rt.on("boom", boom)
        rt.on("boom", other)
        rt.emit("boom")

    r = run(main, spans=spans, sources={"prog.cx": src})
    assert r.code == 3
    assert r.lines == ["before", "other done"]
    assert r.err == ("error[CX504]: division by zero\n --> prog.cx:2:13\n  |\n"
                     "2 |     var x = 1 / 0;\n  |             ^^^^^\n"
                     "  = note: in handler `on boom`\n")
    assert r.err.count("error[") == 1


def test_top_level_error_still_runs_rest() -> None:
    async def start(rt: Any, self: Any, ev: Any) -> None:
        rt.print("started")

    async def main(rt: Any) -> None:
        rt.on("system.start", start)
        rt.print(None + 1)  # type: ignore[operator]

    r = run(main)
    assert r.code == 3 and r.lines == ["started"] and "internal error" in r.err


def test_timeout_exit_3_and_stall_guard() -> None:
    async def forever(rt: Any, self: Any, ev: Any) -> None:
        await asyncio.sleep(10)
        rt.emit("tick")

    async def main(rt: Any) -> None:
        rt.on("tick", forever)
        rt.emit("tick")

    r = run(main, timeout_ms=60_000)
    assert r.code == 3 and "timed out after 60000 ms" in r.err

    async def ping(rt: Any, self: Any, ev: Any) -> None:
        rt.emit("pong")

    async def pong(rt: Any, self: Any, ev: Any) -> None:
        rt.emit("ping")

    async def main2(rt: Any) -> None:
        rt.on("ping", ping)
        rt.on("pong", pong)
        rt.emit("ping")

    r = run(main2, guard_s=0.3)
    assert r.code == 3 and "stalled" in r.err


def test_keyboard_interrupt_exit_130_reports_pending() -> None:
    async def slow(rt: Any, self: Any, ev: Any) -> None:
        await asyncio.sleep(5)

    async def main(rt: Any) -> None:
        rt.on("go", slow)
        rt.emit("go")
        loop = asyncio.get_running_loop()
        loop.call_later(1, signal.raise_signal, signal.SIGINT)

    r = run(main)
    assert r.code == 130 and "interrupted" in r.err and "slow" in r.err


def test_entities_new_realize_and_handler_order() -> None:
    async def base_h(rt: Any, self: Any, ev: Any) -> None:
        rt.print("base", self.cls, self.fields["name"])

    async def derived_h(rt: Any, self: Any, ev: Any) -> None:
        rt.print("derived", self.fields["name"])

    async def realize(rt: Any, self: Any, extra: Any = None, *_: Any) -> None:
        rt.print("realize start", extra)
        await rt.service("learn", 0, dict(self.fields), caller=self)
        self.fields["ready"] = True
        rt.print("realize end", len(self.memory))

    async def bad_realize(rt: Any, self: Any, *_: Any) -> None:
        raise CxRuntimeError("bad realize", -1)

    async def main(rt: Any) -> None:
        rt.define_class("Base", None, realize, [("hello", base_h)])
        rt.define_class("Agent", "Base", None, [("hello", derived_h)])
        rt.define_class("Bad", None, bad_realize, [])
        arg = {"name": "ann"}
        a = await rt.new("Agent", [arg, 5.0])
        arg["name"] = "changed"
        rt.print("new returned", a)
        assert isinstance(a, Instance)
        rt.emit("hello")
        b = await rt.new("Bad", [])
        rt.print("bad fields", b)
        try:
            await rt.new("Agent", [3.0], 4)
        except CxRuntimeError as e:
            rt.print("err", e.message, e.span_id)

    r = run(main)
    assert r.lines == ["realize start 5", "realize end 1",
                       'new returned {"name": "ann", "ready": true}',
                       "bad fields {}", "err `new Agent` expects an object, got number 4",
                       "base Agent ann", "derived ann"]
    assert r.code == 3 and "bad realize" in r.err


def test_depth_contextvar_emits_inherit() -> None:
    from cxpar.runtime import DEPTH

    async def em(rt: Any, self: Any, ev: Any) -> None:
        rt.print("emitted depth", DEPTH.get())

    async def br(rt: Any, self: Any, ev: Any) -> Any:
        rt.emit("em")
        return DEPTH.get()

    async def main(rt: Any) -> None:
        rt.on("em", em)
        rt.on("br", br)
        p = await rt.service("iam", 0, {}, [("d", "br", None)])
        rt.print("branch depth", p["d"])

    assert run(main).lines == ["emitted depth 1", "branch depth 1"]


def test_same_instant_timers_fifo_on_virtual_loop() -> None:
    loop = new_loop("virtual")
    out: list[int] = []
    try:
        for i in range(50):
            loop.call_at(1.0 + (i % 2) * 0.0, out.append, i)
        loop.call_later(0.5, out.append, -1)
        loop.run_until_complete(asyncio.sleep(2))
        assert out == [-1] + list(range(50))
        assert loop.time() == 2.0
    finally:
        loop.close()


def test_stats_and_trace(tmp_path: Any) -> None:
    async def b(rt: Any, self: Any, ev: Any) -> Any:
        await asyncio.sleep(0.1)
        return 1.0

    b.__cx_name__ = "on b"  # type: ignore[attr-defined]

    async def main(rt: Any) -> None:
        rt.on("b", b)
        for _ in range(3):
            await rt.service("think", 0, {"prompt": "p"}, [("x", "b", None), ("y", "b", None)])

    path = tmp_path / "trace.json"
    r = run(main, stats=True, trace=str(path))
    assert r.code == 0 and r.out == ""
    assert "think" in r.err and "on b" in r.err
    data = json.loads(path.read_text())
    evs = [e for e in data["traceEvents"] if e["ph"] == "X"]
    kinds = [e["cat"] for e in evs]
    # the run, and per call: the call, its join, one provider attempt, two branches
    assert sorted(kinds) == sorted(["run"] + ["call", "join", "attempt"] * 3
                                   + ["handler"] * 6)
    assert {e["name"] for e in evs if e["cat"] == "handler"} == {"on b"}
    # the two branches of a call overlap, so they run on two tracks
    for call in (e for e in evs if e["cat"] == "join"):
        kids = [e for e in evs if e["args"]["parent"] == call["args"]["id"]
                and e["cat"] == "handler"]
        assert len(kids) == 2 and kids[0]["tid"] != kids[1]["tid"]


def test_real_clock_runs_same_program() -> None:
    async def b(rt: Any, self: Any, ev: Any) -> Any:
        await asyncio.sleep(0.01)
        return ev["x"]

    async def main(rt: Any) -> None:
        rt.on("b", b)
        p = await rt.service("await", 0, {"durationMs": 20.0}, [("k", "b", {"x": 2.0})])
        rt.print(p["k"], p["result"], rt.now() >= 20)
        rt.print()

    r = run(main, clock="real")
    assert r.code == 0 and r.lines == ["2 20 true", ""]
