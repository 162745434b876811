"""After an outage ends, throughput is back within the breaker cool-down + 100 ms."""

from __future__ import annotations

import asyncio
from typing import Any

from cxpar.runtime.resilience import Resilience

from .conftest import run, run_cx
from .test_breaker import Outage

COOLDOWN_MS = 2000
OUT_START, OUT_END = 3000, 8000


def test_throughput_recovers_within_cooldown_plus_100ms() -> None:
    ends: list[tuple[float, bool]] = []

    async def main(rt: Any) -> None:
        async def one() -> None:
            p = await rt.service("think", -1, {"prompt": "x"}, timeout=1000.0)
            ends.append((rt.now(), "_errors" not in p))

        tasks = []
        for _ in range(1500):  # one call every 10 ms for 15 s, 50 ms each
            tasks.append(asyncio.ensure_future(one()))
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)

    res = Resilience.from_settings({"cooldown_ms": COOLDOWN_MS, "min_requests": 20})

    def setup(rt: Any) -> None:
        rt.resilience = res
        rt._breakers = res.breakers

    r = run(main, provider=Outage(lambda t: OUT_START <= t < OUT_END, latency_ms=50),
            setup=setup)
    assert r.code == 0

    def rate(t0: float, t1: float) -> float:
        return sum(1 for t, ok in ends if ok and t0 <= t < t1) / (t1 - t0) * 1000

    before = rate(1000, OUT_START)
    assert before > 95  # ~100 calls/s
    back = OUT_END + COOLDOWN_MS + 100
    assert rate(back, back + 1000) >= 0.9 * before
    assert rate(OUT_START + 200, OUT_END) == 0  # down (fails fast while open)
    assert res.breakers["think"].state == "closed"


def test_fallback_values_events_and_degraded_errors() -> None:
    r = run_cx("""
        on cache.lookup (e) { return "cached " + e.key + " after " + e.error.type; }
        on slow.part (e) { await { durationMs: 500 }; return "late"; }
        on two.part (e) { return "a"; }
        on two.part (e) { await { durationMs: 500 }; return "b"; }
        var r = think { prompt: "x", s: slow.part, t: two.part, timeout: 100,
                        fallback: null };
        print(r.s, r.t, r._errors.s.degraded, r._parallel.failed);
        var c = think { prompt: "y", s: slow.part, timeout: 100, fallback: cache.lookup };
        print(c.result, "|", c.s, "|", keys(c._errors.result));
        var ok = think { prompt: "z", fallback: "unused" };
        print(ok.result, ok._errors);
    """)
    assert r.code == 0, r.err
    assert r.lines == [
        'null ["a", null] true 2',
        'cached result after timeout | cached s after timeout | '
        '["type", "message", "event", "attempts", "degraded"]',
        "[think] z null",
    ]


def test_fallback_handler_failure_keeps_the_error_and_is_reported() -> None:
    r = run_cx("""
        on bad.fallback (e) { return e.missing.field; }
        var r = think { prompt: "x", fallback: bad.fallback };
        print(r.result, r._errors.result.type, r._errors.result.degraded);
    """, fail_rate=1.0)
    assert r.code == 3 and r.err.count("error[") == 1
    assert r.lines == ["null provider null"]
