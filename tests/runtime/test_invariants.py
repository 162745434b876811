"""The `_errors` invariant under random fault injection (SPEC §4.4 step 3, rules 7–10, 36)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxpar.runtime import CxRuntimeError, SimProvider
from cxpar.runtime.breaker import BreakerConfig

from .conftest import run

BEHAVIOURS = st.sampled_from(["ok", "slow_ok", "raise", "hang", "none"])
PLAN = st.lists(st.lists(BEHAVIOURS, max_size=3), max_size=4)


def make(kind: str, tag: str) -> Any:
    async def h(rt: Any, self: Any, ev: Any) -> Any:
        if kind == "ok":
            return tag
        if kind == "slow_ok":
            await asyncio.sleep(0.05)
            return tag
        if kind == "raise":
            raise CxRuntimeError("bad", -1)
        if kind == "hang":
            await asyncio.sleep(100)
        return None
    return h


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=PLAN, fail=st.sampled_from([0.0, 0.5, 1.0]), retries=st.integers(0, 1),
       seed=st.integers(0, 5))
def test_errors_invariant(plan: list[list[str]], fail: float, retries: int, seed: int) -> None:
    box: dict[str, Any] = {}

    async def main(rt: Any) -> None:
        branches = []
        for i, subs in enumerate(plan):
            for j, kind in enumerate(subs):
                rt.on(f"ev{i}", make(kind, f"{i}.{j}"))
            branches.append((f"k{i}", f"ev{i}", {"extra": float(i)}))
        box["p"] = await rt.service("infer", 0, {"q": "x"}, branches, timeout=1000.0,
                                    retries=float(retries))

    r = run(main, seed=seed, provider=SimProvider(seed, fail_rate=fail), breaker=BreakerConfig(enabled=False))
    p = box["p"]
    keys = [f"k{i}" for i in range(len(plan))]
    errors = p.get("_errors", {})
    expect_order = ["q", "result", *keys] + (["_errors"] if errors else []) + ["_parallel"]
    assert list(p) == expect_order
    par = p["_parallel"]
    assert par["branches"] == len(plan) and par["succeeded"] + par["failed"] == len(plan)
    assert par["failed"] == len([k for k in errors if k != "result"])
    assert list(errors) == [k for k in ["result", *keys] if k in errors]
    assert ("result" in errors) == (p["result"] is None)
    for i, subs in enumerate(plan):
        key = f"k{i}"
        bad = [j for j, kind in enumerate(subs) if kind in ("raise", "hang")]
        assert (key in errors) == (not subs or bool(bad))
        for e in errors.values():
            assert set(e) == {"type", "message", "event", "attempts"}
        if not subs:
            assert errors[key]["type"] == "no_handler" and p[key] is None
            continue
        vals = p[key] if len(subs) > 1 else [p[key]]
        assert len(vals) == len(subs)
        for j, kind in enumerate(subs):  # no successful result is dropped
            want = f"{i}.{j}" if kind in ("ok", "slow_ok") else None
            assert vals[j] == want
        if bad:
            assert errors[key]["attempts"] == len(subs) + retries * len(bad)
    assert r.code == (3 if any("raise" in s for s in plan) else 0)
