"""Circuit breaker state machine (closed → open → half-open → closed/open) and its events."""

from __future__ import annotations

from typing import Any

import pytest

from cxpar.runtime.breaker import CLOSED, HALF_OPEN, OPEN, BreakerConfig, CircuitBreaker
from cxpar.runtime.providers.base import ProviderError
from cxpar.runtime.resilience import Resilience, parse_settings

from .conftest import run, run_cx


def rate_breaker(**kw: Any) -> CircuitBreaker:
    args: dict[str, Any] = dict(threshold=0, failure_rate=0.5, window_s=10.0, min_requests=10,
                                half_open_probes=1)
    args.update(kw)
    return CircuitBreaker(cooldown_s=5.0, **args)


def test_opens_on_failure_rate_only_after_min_requests() -> None:
    b = rate_breaker()
    for i in range(9):  # 9 failures: below min_requests
        assert b.record(b.admit(float(i)) or 0, False, float(i)) is None
    assert b.state == CLOSED
    assert b.record(0, True, 9.0) is None  # 10 requests, 9 failed → ≥ 50 %
    assert b.record(0, False, 9.5) == OPEN
    assert b.state == OPEN and b.last_requests == 11 and b.last_failures == 10
    assert b.admit(10.0) is None  # fails fast


def test_below_the_rate_stays_closed_and_the_window_slides() -> None:
    b = rate_breaker()
    for i in range(40):  # 25 % failures
        assert b.record(0, i % 4 != 0, i * 0.1) is None
    assert b.state == CLOSED
    # old failures leave the window: 10 s later only new outcomes count
    for i in range(10):
        b.record(0, i % 2 == 0, 20.0 + i * 0.1)
    assert b.window_stats(21.0) == (10, 5)
    assert b.state == OPEN  # 5 of 10 failed = 50 %


def test_consecutive_threshold_still_opens_at_low_traffic() -> None:
    b = CircuitBreaker(3, 10.0)
    assert [b.failure(1.0) for _ in range(3)] == [None, None, OPEN]
    assert b.state == "open" and b.allow(5.0) is False


def test_half_open_after_cooldown_single_probe_closes_or_reopens() -> None:
    b = CircuitBreaker(2, 5.0)
    b.failure(0.0)
    b.failure(0.0)
    assert b.admit(4.9) is None
    t = b.admit(5.0)
    assert t is not None and t > 0 and b.state == HALF_OPEN
    assert b.admit(5.0) is None  # one probe at a time
    assert b.record(t, False, 5.2) == OPEN  # probe failed: another cool-down
    assert b.admit(10.1) is None
    t2 = b.admit(10.3)
    assert t2 is not None and t2 != t
    assert b.record(t2, True, 10.4) == CLOSED
    assert b.state == CLOSED and b.consecutive == 0 and b.window_stats() == (0, 0)


def test_half_open_concurrent_probes() -> None:
    b = rate_breaker(threshold=1, half_open_probes=3)
    b.record(0, False, 0.0)
    assert b.state == OPEN
    tickets = [b.admit(5.0) for _ in range(5)]
    assert tickets[:3] == [1, 1, 1] and tickets[3:] == [None, None]
    assert b.record(1, True, 5.1) is None
    assert b.admit(5.1) is None  # 1 ok + 2 in flight = 3 probes
    b.release(1)  # a probe cancelled: its place goes to the next call
    t = b.admit(5.2)
    assert t == 1
    assert b.record(1, True, 5.3) is None
    assert b.record(1, True, 5.4) == CLOSED  # three successes
    # a late probe of the finished episode changes nothing
    assert b.record(1, False, 5.5) is None and b.state == CLOSED


def test_half_open_one_probe_failure_reopens_and_stale_tickets_are_ignored() -> None:
    b = rate_breaker(threshold=1, half_open_probes=2)
    b.record(0, False, 0.0)
    t1, t2 = b.admit(5.0), b.admit(5.0)
    assert t1 == t2 == 1
    assert b.record(t1 or 0, False, 5.1) == OPEN
    assert b.record(t2 or 0, True, 5.2) is None and b.state == OPEN
    # a call admitted while closed, ending while open: no say
    assert b.record(0, True, 6.0) is None and b.state == OPEN
    assert b.admit(10.1) == 2  # next episode


def test_config_validation_and_cli_parsing() -> None:
    cfg = BreakerConfig.from_mapping(parse_settings("failure_rate=0.3,window=5000,"
                                                    "min_requests=7,half_open_probes=2",
                                                    "breaker"))
    assert (cfg.failure_rate, cfg.window, cfg.min_requests, cfg.half_open_probes) == \
        (0.3, 5000.0, 7, 2)
    assert BreakerConfig.from_mapping(parse_settings("off", "breaker")).enabled is False
    for bad in ({"failure_rate": 2}, {"min_requests": 1.5}, {"nope": 1},
                {"half_open_probes": 0}, {"window": 0}, {"enabled": "maybe"}):
        with pytest.raises(ValueError):
            BreakerConfig.from_mapping(bad)
    assert Resilience(BreakerConfig(enabled=False)).breaker("think") is None


class Outage:
    """Fails (HTTP 503) while ``down(now_ms)``; else answers after ``latency_ms``."""

    def __init__(self, down: Any, latency_ms: float = 50) -> None:
        self.down = down
        self.latency_ms = latency_ms

    async def call(self, service: str, request: dict[str, Any], context: Any) -> Any:
        import asyncio

        rt = context.runtime
        if self.down(rt.now()):
            raise ProviderError("HTTP 503 Service Unavailable")
        await asyncio.sleep(self.latency_ms / 1000)
        return "ok"


def test_state_changes_are_events_in_the_program() -> None:
    seen: list[str] = []

    async def on_open(rt: Any, _s: Any, ev: Any) -> None:
        seen.append(f"{rt.now():g} open {ev['service']} {ev['failureRate']:g} "
                    f"{ev['requests']:g}/{ev['windowMs']:g}")

    async def on_closed(rt: Any, _s: Any, ev: Any) -> None:
        seen.append(f"{rt.now():g} closed {ev['service']}")

    async def main(rt: Any) -> None:
        rt.on("system.circuit.open", on_open)
        rt.on("system.circuit.closed", on_closed)
        kinds = []
        for _ in range(30):
            p = await rt.service("think", -1, {"prompt": "x"})
            kinds.append(p.get("_errors", {}).get("result", {}).get("type", "ok"))
            await rt.service("await", -1, {"durationMs": 100.0})
        rt.print(" ".join(k[0] for k in kinds))

    res = Resilience.from_settings({"threshold": 0, "min_requests": 5, "cooldown_ms": 1000})

    def setup(rt: Any) -> None:
        rt.resilience = res
        rt._breakers = res.breakers

    r = run(main, provider=Outage(lambda t: t < 1000), setup=setup)
    # 5 failures (50 ms apart + 100 ms) open it; fail fast; probe after 1 s succeeds
    assert seen == ["400 open think 1 5/10000", "1450 closed think"]
    assert r.lines == ["p p p p p c c c c c c c c c o o o o o o o o o o o o o o o o"]


def test_cx_program_degrades_gracefully_on_circuit_events() -> None:
    r = run_cx("""
        var degraded = false;
        on system.circuit.open (e) { degraded = true; print("open " + e.service); }
        for (var i = 0; i < 7; i++) {
            var r = think { prompt: "x", fallback: "canned" };
            print(r.result + " " + r._errors.result.type + " " + degraded);
        }
    """, fail_rate=1.0)
    assert r.code == 0, r.err
    assert r.lines[:5] == ["canned provider false"] * 4 + ["open think"]
    assert r.lines[5:] == ["canned provider true"] + ["canned circuit_open true"] * 2
