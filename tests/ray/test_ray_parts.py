"""The Ray executor's pure parts: shares of a global limit, chunk sizes, merged stats."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from cxpar.runtime.executors.ray import chunk_size, shares


@given(st.integers(1, 10_000), st.integers(1, 64))
def test_shares_add_up_and_differ_by_at_most_one(total: int, parts: int) -> None:
    got = shares(total, parts)
    assert sum(x or 0 for x in got) == total and len(got) == parts
    assert max(x or 0 for x in got) - min(x or 0 for x in got) <= 1


def test_no_limit_is_no_limit_for_every_worker() -> None:
    assert shares(None, 3) == [None, None, None]


@given(st.integers(1, 100_000))
def test_chunks_are_small(slots: int) -> None:
    assert 1 <= chunk_size(slots) <= 8


def test_progress_and_dashboard_show_each_workers_throughput() -> None:
    from cxpar.runtime.dashboard import Monitor
    from cxpar.runtime.streams import Progress

    counts = Progress(100, 0)
    assert "workers" not in counts.line()  # the local executor: no workers
    counts.workers.update({"w1": 30, "w2": 10})
    counts.done = 40
    line = counts.line()
    assert "; workers w1 " in line and ", w2 " in line and "/s" in line
    from cxpar.runtime.tracing import Recorder

    snap = Monitor(Recorder(), batch=counts).snapshot()
    assert snap["workers"]["w1"]["done"] == 30 and snap["workers"]["w2"]["done"] == 10
    assert snap["workers"]["w1"]["rate"] > snap["workers"]["w2"]["rate"] > 0


FAILING = """
on input.record (event) {
    var r = think { prompt: "item " + event.n };
    emit output.record { n: event.n, errors: r._errors };
}
"""


def _worker(name: str) -> Any:
    from cxpar.runtime.breaker import BreakerConfig
    from cxpar.runtime.executors.ray_worker import ProgramSource, StreamWorker
    from cxpar.runtime.settings import RunSettings

    settings = RunSettings(clock="virtual", fail_rate=1.0, progress=False,
                           breaker=BreakerConfig(threshold=2, cooldown_ms=600_000))
    w = StreamWorker(ProgramSource("b.cx", FAILING), settings, 1, name)
    assert w.setup_error is None, w.setup_error
    return w


def test_a_breaker_opened_on_one_worker_opens_on_the_others() -> None:
    """(In-process: the actor class without Ray.) Worker 1's own failures open its
    breaker and it says so; worker 2, told, fails fast without calling the provider and
    does not report the opening as its own (no echo)."""
    w1, w2 = _worker("w1"), _worker("w2")
    try:
        first = asyncio.run(w1.run_chunk([(i, {"n": i}) for i in range(3)]))
        assert list(first.opened) == [next(iter(w1.batch.shared.breakers))]
        second = asyncio.run(w2.run_chunk([(3, {"n": 3})], list(first.opened)))
        line = json.loads(second.lines[0][1])
        # failed fast: a call that reached the (always failing) sim would say otherwise
        assert "circuit open" in json.dumps(line["output"]["errors"])
        assert second.opened == {}
    finally:
        w1.stop()
        w2.stop()


def test_the_driver_tells_each_other_worker_once_per_opening() -> None:
    from cxpar.runtime.executors.ray import RayExecutor, _Worker
    from cxpar.runtime.executors.ray_worker import ProgramSource
    from cxpar.runtime.settings import RunSettings

    ex = RayExecutor(RunSettings(), ProgramSource("b.cx", ""), 10)
    a, b, c = (_Worker(n, None, 4) for n in ("w1", "w2", "w3"))
    ex.workers = [a, b, c]
    ex._saw_opened(a, {"think@sim": 1})
    assert ex._trips_for(a) == []
    assert ex._trips_for(b) == ["think@sim"] and ex._trips_for(b) == []
    ex._saw_opened(a, {"think@sim": 1})  # still the same opening
    assert ex._trips_for(c) == ["think@sim"] and ex._trips_for(c) == []
    ex._saw_opened(b, {"think@sim": 1})  # b's own opening later: a new trip for a and c
    assert ex._trips_for(a) == ["think@sim"] and ex._trips_for(c) == ["think@sim"]
    assert ex._trips_for(b) == []


@given(st.integers(1, 16), st.integers(1, 500), st.one_of(st.none(), st.integers(16, 300)),
       st.integers(1, 1000))
def test_every_global_limit_is_split_between_the_workers(n: int, streams: int,
                                                         conc: int | None, todo: int) -> None:
    from cxpar.runtime.adaptive import LimitsConfig
    from cxpar.runtime.executors.ray import worker_shares
    from cxpar.runtime.settings import EndpointSettings, RunSettings

    ep = EndpointSettings(base_url="http://127.0.0.1:9/v1", model="m", rpm=600.0,
                          tpm=90_000.0, max_concurrency=24)
    s = RunSettings(streams=streams, max_concurrency=conc, capacity={"think": 40.0},
                    limits=LimitsConfig(initial=20, max=200),
                    endpoints={"gpt": ep, "sim": EndpointSettings(rpm=60.0)})
    parts = worker_shares(s, n, todo)
    assert len(parts) == n
    if conc is not None:
        assert sum(p.max_concurrency or 0 for p in parts) == conc
    assert sum(p.streams for p in parts) <= max(min(streams, todo), n)
    assert sum(p.limits.max for p in parts) <= max(200, n)
    assert abs(sum(p.capacity["think"] for p in parts) - 40.0) < 1e-9
    for name, whole in s.endpoints.items():  # an endpoint's limits are global too
        got = [p.endpoints[name] for p in parts]
        assert abs(sum(e.rpm or 0 for e in got) - (whole.rpm or 0)) < 1e-6
        assert abs(sum(e.tpm or 0 for e in got) - (whole.tpm or 0)) < 1e-6
        if whole.max_concurrency:
            assert sum(e.max_concurrency or 0 for e in got) == max(whole.max_concurrency, n)
        assert all((e.base_url, e.model) == (whole.base_url, whole.model) for e in got)
    for p in parts:  # everything else travels whole
        assert (p.seed, p.clock, p.breaker, p.limits.algorithm) == \
            (s.seed, s.clock, s.breaker, s.limits.algorithm)


def test_a_workers_recording_travels_to_the_driver_once() -> None:
    """(In-process: the actor class without Ray.) Each chunk brings back exactly its own
    streams' spans and the aggregates since the last chunk, pickled as Ray would; the
    driver's recorder absorbs them under its root, on its clock."""
    import pickle

    from cxpar.runtime.executors.ray_worker import ProgramSource, StreamWorker
    from cxpar.runtime.settings import RunSettings
    from cxpar.runtime.tracing import Recorder

    prog = ('on input.record (event) { var r = think { prompt: "x" + event.n }; '
            'emit output.record { n: event.n }; }')
    w = StreamWorker(ProgramSource("b.cx", prog), RunSettings(clock="virtual", stats=True),
                     4, "w1")
    assert w.setup_error is None, w.setup_error
    driver = Recorder()
    driver.start_run(0.0, "batch")
    try:
        for chunk in ([(0, {"n": 0}), (1, {"n": 1})], [(2, {"n": 2})]):
            res = pickle.loads(pickle.dumps(asyncio.run(w.run_chunk(chunk))))
            assert res.recorded is not None
            assert {s.pid for s in res.recorded.spans} == {i + 2 for i, _ in chunk}
            assert res.recorded.aggs[("service", "think")].count == len(chunk)
            assert res.spent["requests"] == chunk[-1][0] + 1  # cumulative
            driver.absorb(res.recorded, 10.0)
        assert w.batch.shared.recorder.spans == []  # nothing sent twice
        assert driver.aggs[("service", "think")].count == 3
        streams = [s for s in driver.spans if s.kind == "stream"]
        assert len(streams) == 3 and all(s.parent is driver.root for s in streams)
        assert all(s.t0 >= 10.0 for s in streams)
        assert len({s.id for s in driver.spans}) == len(driver.spans)
    finally:
        w.stop()


def test_a_halted_worker_starts_no_record() -> None:
    from cxpar.runtime.executors.ray_worker import ProgramSource, StreamWorker
    from cxpar.runtime.settings import RunSettings

    prog = 'on input.record (event) { emit output.record { n: event.n }; }'
    w = StreamWorker(ProgramSource("b.cx", prog), RunSettings(clock="virtual"), 2, "w1")
    try:
        asyncio.run(w.halt("token budget reached: 10 tokens used, --max-tokens 10"))
        res = asyncio.run(w.run_chunk([(0, {"n": 0})]))
        line = json.loads(res.lines[0][1])
        assert line["error"]["type"] == "budget_exceeded" and res.lines[0][2]
        assert res.spent["stopped_records"] == 1
    finally:
        w.stop()


def test_virtual_time_stands_still_while_the_driver_commits() -> None:
    """A worker's journaled call on the virtual clock waits for the driver's commit (in
    real time, from another thread) without other timers firing meanwhile, so events
    keep the order of a local journaled run."""
    import threading
    import time

    from cxpar.journal.store import CallRecord
    from cxpar.runtime.clock import new_loop
    from cxpar.runtime.executors.ray_journal import RemoteJournal

    loop = new_loop("virtual")
    seen: list[tuple[str, float]] = []

    async def main() -> None:
        journal = RemoteJournal("j.db", write=True)
        rec = CallRecord(0, "think", b"h", 0, "{}", '"ok"', 1, 0.0, 5.0)

        async def timer() -> None:
            await asyncio.sleep(0.2)
            seen.append(("timer", loop.time()))

        def driver() -> None:  # what pump() does over Ray, from another thread
            while not journal.queued:
                time.sleep(0.01)
            taken = asyncio.run_coroutine_threadsafe(_call(journal.drain), loop).result()
            time.sleep(0.3)
            loop.call_soon_threadsafe(journal.settle, [n for n, _ in taken])

        t = asyncio.create_task(timer())
        fut = journal.record_soon(rec)
        threading.Thread(target=driver, daemon=True).start()
        await fut
        seen.append(("committed", loop.time()))
        await t

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen == [("committed", 0.0), ("timer", 0.2)]


async def _call(fn: Any) -> Any:
    return fn()


@given(st.integers(1, 2000), st.integers(1, 5),
       st.lists(st.integers(0, 500), min_size=1, max_size=8))
def test_rebalanced_caps_add_up_and_follow_demand(total: int, low: int,
                                                  demands: list[int]) -> None:
    from cxpar.runtime.executors.ray import rebalance

    caps = rebalance(total, low, demands)
    assert len(caps) == len(demands) and min(caps) >= low
    assert sum(caps) == max(total, low * len(demands))
    for i, j in zip(range(len(demands)), range(1, len(demands)), strict=False):
        if demands[i] > demands[j]:
            assert caps[i] >= caps[j]
    if total - low * len(demands) >= 0 and sum(demands) > 0:
        spare = total - low * len(demands)
        for cap, d in zip(caps, demands, strict=True):  # within one of its fair part
            assert abs((cap - low) - spare * d / sum(demands)) < 1


def test_a_worker_applies_the_drivers_caps_to_its_adaptive_limits() -> None:
    from cxpar.runtime.adaptive import LimitsConfig
    from cxpar.runtime.executors.ray_worker import ProgramSource, StreamWorker
    from cxpar.runtime.settings import RunSettings

    prog = ('on input.record (event) { var r = think { prompt: "x" + event.n }; '
            'emit output.record { n: event.n }; }')
    settings = RunSettings(clock="virtual", limits=LimitsConfig(adaptive=True, initial=6,
                                                                max=8))
    w = StreamWorker(ProgramSource("b.cx", prog), settings, 8, "w1")
    try:
        first = asyncio.run(w.run_chunk([(i, {"n": i}) for i in range(8)]))
        (key, wanted), = first.demand.items()
        assert wanted >= 6  # at least its limit
        asyncio.run(w.run_chunk([(8, {"n": 8})], caps={key: 2}))
        lim = w.batch.shared.resilience.limiters[key]
        assert lim.max_limit == 2 and lim.limit <= 2
    finally:
        w.stop()
