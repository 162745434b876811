"""Chaos: random failure rates (1–50 %), latency spikes, timeouts, cancellations, nested
calls, 10 000+ branches. Every call keeps |successes| + |_errors| = |branches|, nothing
hangs, every runtime error is reported exactly once, and a seed replays exactly."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from cxpar.runtime.errors import CxRuntimeError
from cxpar.runtime.providers.sim import SimProvider

from .conftest import run

SEEDS = list(range(8))
CALLS = 110


def chaos(seed: int, **limits: Any) -> tuple[Any, dict[str, int]]:
    """One chaos run; ``limits``: ``max_concurrency`` / ``limits`` settings to run under."""
    rng = random.Random(seed)
    fail = rng.uniform(0.01, 0.5)
    stats = {"branches": 0, "calls": 0, "raised": 0, "violations": 0}
    provider = SimProvider(seed, fail_rate=fail, timeout_rate=fail / 5,
                           latency_ms={"think": 80, "infer": 30})
    h_rng = random.Random(f"handlers:{seed}")
    problems: list[str] = []

    def handler(k: int, i: int) -> Any:
        async def h(rt: Any, _self: Any, ev: Any) -> Any:
            r = h_rng.random()
            lat = h_rng.choice((5, 10, 20, 40)) * (40 if h_rng.random() < 0.05 else 1)
            if r < fail / 2:
                stats["raised"] += 1
                raise CxRuntimeError(f"chaos k{k}s{i}", -1)
            if r < fail / 2 + 0.03:
                await asyncio.get_running_loop().create_future()  # hangs: timeout ends it
            if r > 0.93 and ev.get("depth", 0) < 2:  # a nested call, maybe cancelled
                p = await rt.service("infer", -1, {"prompt": "n", "depth": ev.get("depth", 0) + 1},
                                     [("n0", "ev.k0", None), ("n1", "ev.k1", None)],
                                     timeout=float(h_rng.choice((20, 60, 400))))
                check(p, 2, 2)
            await asyncio.sleep(lat / 1000)
            return f"k{k}s{i}"

        h.__cx_name__ = f"h{k}.{i}"  # type: ignore[attr-defined]
        return h

    nsubs = [rng.choice((1, 1, 2, 3)) for _ in range(30)]

    def check(p: dict[str, Any], nkeys: int, first: int) -> None:
        stats["calls"] += 1
        stats["branches"] += nkeys
        errors = p.get("_errors", {})
        par = p["_parallel"]
        ok = 0
        for k in range(nkeys):
            key = f"n{k}" if first == 2 else f"b{k}"
            ki = k if first == 2 else k
            if key not in p:
                problems.append(f"missing {key}")
                continue
            v = p[key]
            subs = nsubs[ki]
            want = [f"k{ki}s{i}" for i in range(subs)]
            got = v if subs > 1 else [v]
            if key in errors:
                if not any(g is None for g in got):
                    problems.append(f"{key} failed without a null slot: {v}")
            else:
                ok += 1
                if got != want:
                    problems.append(f"{key} lost a result: {v} != {want}")
            # no successful result dropped, even in a failed key
            for g, w in zip(got, want, strict=True):
                if g is not None and g != w:
                    problems.append(f"{key} wrong value {g}")
        nfail = sum(1 for k in errors if k != "result")
        if ok + nfail != nkeys or par["succeeded"] != ok or par["failed"] != nfail or \
                par["branches"] != nkeys:
            problems.append(f"invariant broken: {ok} + {nfail} != {nkeys} {par}")
        if (p["result"] is None) != ("result" in errors):
            problems.append("result/_errors mismatch")

    async def caller(rt: Any, _self: Any, ev: Any) -> None:
        nkeys = ev["n"]
        branches = [(f"b{k}", f"ev.k{k}", None) for k in range(nkeys)]
        p = await rt.service("think", -1, {"prompt": f"c{ev['i']}"}, branches,
                             timeout=float(ev["timeout"]), retries=float(ev["retries"]))
        check(p, nkeys, 0)
        rt.print(json.dumps(p, sort_keys=True))

    async def main(rt: Any) -> None:
        for k, n in enumerate(nsubs):
            for i in range(n):
                rt.on(f"ev.k{k}", handler(k, i))
        rt.on("go", caller)
        for i in range(CALLS):
            rt.emit("go", {"i": i, "n": rng.randint(1, 30), "timeout": rng.choice((50, 100, 300)),
                           "retries": rng.choice((0, 0, 1, 2))})
            if rng.random() < 0.1:
                await asyncio.sleep(rng.random())

    r = run(main, seed=seed, provider=provider, timeout_ms=120_000, guard_s=10.0, **limits)
    stats["violations"] = len(problems)
    assert not problems, problems[:5]
    return r, stats


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_invariants_and_replay(seed: int) -> None:
    a, sa = chaos(seed)
    assert a.code in (0, 3)
    assert "program timed out" not in a.err and "stalled" not in a.err  # bounded
    assert sa["calls"] >= CALLS
    # every runtime error reported exactly once: one report per raise, nothing else —
    # an error, or a warning when the branch is retried (rule 6)
    reports = a.err.count("error[") + a.err.count("warning[CX500]: attempt ")
    assert reports == sa["raised"], (reports, sa)
    assert (a.code == 3) == ("error[" in a.err)
    b, sb = chaos(seed)
    assert (a.out, a.err, a.code) == (b.out, b.err, b.code) and sa == sb


@pytest.mark.parametrize(("seed", "limit", "schedule"),
                         [(0, 1, "program"), (1, 4, "program"), (2, 2, "fifo"), (3, 1, "fifo")])
def test_chaos_under_a_global_limit(seed: int, limit: int, schedule: str) -> None:
    """Nested calls, timeouts, retries and cancellations while calls wait for slots
    (rule 45): the same invariants, nothing hangs, replays are exact."""
    from cxpar.runtime.adaptive import LimitsConfig

    kw = {"max_concurrency": limit, "limits": LimitsConfig(schedule=schedule)}
    a, sa = chaos(seed, **kw)
    assert a.code in (0, 3)
    assert "program timed out" not in a.err and "stalled" not in a.err
    reports = a.err.count("error[") + a.err.count("warning[CX500]: attempt ")
    assert reports == sa["raised"], (reports, sa)
    b, sb = chaos(seed, **kw)
    assert (a.out, a.err, a.code) == (b.out, b.err, b.code) and sa == sb


def test_chaos_covers_10000_branches() -> None:
    total = sum(chaos(seed)[1]["branches"] for seed in SEEDS)
    assert total >= 10_000, total
