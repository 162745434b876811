"""Adaptive concurrency limit against the sim's capacity model; priorities with aging;
the retry budget."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Sequence
from typing import Any

import pytest

from cxpar.runtime.adaptive import AdaptiveLimiter, LimitsConfig
from cxpar.runtime.breaker import BreakerConfig
from cxpar.runtime.limits import Limiter, RetryBudget
from cxpar.runtime.providers.sim import SimProvider

from .conftest import run, run_cx
from .load import run_load

CAP = 50


def settled_limit(res: Any, initial: int) -> float:
    """Median limit over the second half of the run."""
    half = res.end_s / 2
    samples = [res.limit_at(half + i * (res.end_s - half) / 50, initial) for i in range(50)]
    return statistics.median(samples)


@pytest.mark.parametrize("initial", [5, 400], ids=["from-below", "from-above"])
def test_converges_near_capacity(initial: int) -> None:
    res = run_load(capacity=CAP, calls=3000, initial=initial)
    lim = settled_limit(res, initial)
    assert 0.8 * CAP <= lim <= 1.2 * CAP, (lim, res.history[-10:])


@pytest.mark.parametrize("cap", [12, 120])
def test_converges_for_other_capacities(cap: int) -> None:
    res = run_load(capacity=cap, calls=30 * cap, latency_ms=200, workers=8 * cap)
    lim = settled_limit(res, 10)
    assert 0.75 * cap <= lim <= 1.25 * cap, (lim, res.history[-10:])


def test_throughput_after_convergence_is_90_percent_of_the_best_fixed_limit() -> None:
    def steady(res: Any) -> float:
        return res.throughput(10.0, res.end_s * 0.9)

    sweep = {fixed: steady(run_load(capacity=CAP, calls=3000, fixed=fixed))
             for fixed in (20, 35, 45, 50, 55, 65, 100)}
    best = max(sweep.values())
    assert max(sweep, key=lambda k: sweep[k]) == CAP  # the capacity model peaks there
    for initial in (5, 400):
        adaptive = steady(run_load(capacity=CAP, calls=3000, initial=initial))
        assert adaptive >= 0.9 * best, (initial, adaptive, sweep)


def test_aimd_fallback_also_finds_the_capacity() -> None:
    res = run_load(capacity=CAP, calls=4000, algorithm="aimd", initial=20)
    lim = settled_limit(res, 20)
    assert 0.7 * CAP <= lim <= 1.3 * CAP, (lim, res.history[-10:])


def test_deterministic() -> None:
    a = run_load(capacity=CAP, calls=800, seed=3)
    b = run_load(capacity=CAP, calls=800, seed=3)
    assert a.done == b.done and a.history == b.history


def test_capacity_model_and_cli_default_auto() -> None:
    prog = """
        on go (e) {
            var r = think { prompt: "x" };
            if (r._errors && r._errors.result.type == "provider") { print("err"); }
        }
        for (var i = 0; i < 200; i++) { emit go {}; }
    """
    # no adaptive limit: 200 calls at once on a capacity of 50 → 429s
    over = run_cx(prog, provider=SimProvider(0, capacity={"think": 50.0}),
                  limits=LimitsConfig(adaptive=False))
    assert over.lines.count("err") > 100
    # adaptive (auto-on with a capacity): far fewer rejections (429s; calls still waiting
    # when the breaker opens on its first burst of 429s fail fast as `circuit_open`)
    auto = run_cx(prog, provider=SimProvider(0, capacity={"think": 50.0}),
                  limits=LimitsConfig())
    assert auto.lines.count("err") < 20, auto.lines.count("err")


def test_limits_config_validation() -> None:
    cfg = LimitsConfig.from_mapping({"algorithm": "aimd", "initial": 4, "aging_ms": 0})
    assert (cfg.algorithm, cfg.initial, cfg.aging_ms) == ("aimd", 4, 0)
    for bad in ({"algorithm": "vegas2"}, {"initial": 0}, {"min": 5, "max": 2},
                {"adaptive": "sometimes"}, {"what": 1}):
        with pytest.raises(ValueError):
            LimitsConfig.from_mapping(bad)


# ---------------------------------------------------------------- priorities and aging

def drain_order(lim: Limiter, reqs: Sequence[tuple[float, float, str]]) -> list[str]:
    """Occupy the only slot, queue ``(enqueue_time_s, priority, name)``, release all."""
    from scheduling.helpers import order

    return order(lim, [(t, name, None, prio, None) for t, prio, name in reqs])


def test_priority_order_at_one_instant_is_rule_19() -> None:
    reqs = [(0, -1, "low1"), (0, 1, "high1"), (0, 0, "norm"), (0, 1, "high2"), (0, -1, "low2")]
    assert drain_order(Limiter(1, aging_s=10), reqs) == \
        ["high1", "high2", "norm", "low1", "low2"]


def test_aging_lets_long_waiting_low_priority_go_first() -> None:
    # low waited 25 s (2.5 levels at 10 s/level) > high's lead of 2 levels
    reqs = [(0, -1, "old-low"), (25, 1, "new-high"), (25, -1, "new-low")]
    assert drain_order(Limiter(1, aging_s=10), reqs) == ["old-low", "new-high", "new-low"]
    assert drain_order(Limiter(1, aging_s=0), reqs) == ["new-high", "old-low", "new-low"]


def test_low_priority_never_starves_under_a_stream_of_high_priority_work() -> None:
    async def main(rt: Any) -> None:
        ends: dict[str, float] = {}

        async def call(name: str, prio: str) -> None:
            await rt.service("infer", -1, {"prompt": name}, priority=prio)
            ends[name] = rt.now()

        tasks = [asyncio.ensure_future(call("low", "low"))]
        for i in range(400):  # a new high-priority call every 100 ms for 40 s
            tasks.append(asyncio.ensure_future(call(f"h{i}", "high")))
            await asyncio.sleep(0.1)
        await asyncio.gather(*tasks)
        rt.print(ends["low"])

    # one slot, 300 ms per call: high work alone keeps the slot busy for 120 s. With 5 s
    # aging windows `low` (two levels below) waits only for the high calls that started
    # waiting within two windows of it (100 calls, 30 s); without aging it runs last.
    r = run(main, max_concurrency=1, limits=LimitsConfig(aging_ms=5000))
    assert 30_000 <= float(r.lines[0]) <= 30_600, r.lines
    r = run(main, max_concurrency=1, limits=LimitsConfig(aging_ms=0))
    assert float(r.lines[0]) > 120_000, r.lines


def test_adaptive_limiter_queues_by_priority() -> None:
    lim = AdaptiveLimiter(1, algorithm="gradient")
    reqs = [(0, -1, "low"), (0, 1, "high")]
    assert drain_order(lim, reqs) == ["high", "low"]


# ---------------------------------------------------------------- retry budget

def test_retry_budget_unit() -> None:
    b = RetryBudget(ratio=0.2, reserve=2, ttl_s=10)
    for _ in range(10):
        b.on_call(0.0)
    assert [b.try_retry(0.0) for _ in range(5)] == [True, True, True, True, False]
    assert b.try_retry(10.5) is True  # the window moved on: only the reserve is left


def test_dead_endpoint_is_not_hammered_by_retries() -> None:
    attempts = [0]

    class Dead:
        async def call(self, service: str, request: Any, ctx: Any) -> Any:
            attempts[0] += 1
            await asyncio.sleep(0.01)
            raise ConnectionError("connection refused")

    async def main(rt: Any) -> None:
        async def one() -> None:
            await rt.service("think", -1, {"prompt": "x"}, retries=5.0)

        await asyncio.gather(*(one() for _ in range(200)))

    r = run(main, provider=Dead(), breaker=BreakerConfig(enabled=False))
    # without a budget: 200 × 6 = 1200 attempts; with it ≤ 200 + 10 + 20 %
    assert r.code == 0 and 200 <= attempts[0] <= 200 + 10 + 40, attempts[0]


def test_only_retryable_failures_are_retried() -> None:
    from cxpar.runtime.providers.base import ProviderError

    class Picky:
        async def call(self, service: str, request: Any, ctx: Any) -> Any:
            raise ProviderError("HTTP 400", retryable=request["prompt"] != "bad")

    async def main(rt: Any) -> None:
        for prompt in ("bad", "flaky"):
            p = await rt.service("think", -1, {"prompt": prompt}, retries=3.0)
            rt.print(prompt, p["_errors"]["result"]["attempts"])

    r = run(main, provider=Picky(), breaker=BreakerConfig(enabled=False))
    assert r.lines == ["bad 1", "flaky 4"]
