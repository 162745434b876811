"""Token estimates of the sim, prices, the meter and budgets (issue 19)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from cxpar.runtime import Runtime
from cxpar.runtime.cost import Budget, Meter, Price, Pricing, fmt_usd, parse_price
from cxpar.runtime.providers.base import CallContext, Usage, estimate_tokens, request_text
from cxpar.runtime.providers.sim import SimProvider, sim_usage
from cxpar.runtime.run import run_program
from cxpar.runtime.settings import ProviderSettings, RunSettings, SettingsError


def test_estimate_is_characters_over_four_rounded_up() -> None:
    assert [estimate_tokens("x" * n) for n in (0, 1, 4, 5, 8, 9)] == [0, 1, 1, 2, 2, 3]


def test_sim_usage_is_the_user_message_and_the_answer() -> None:
    req = {"prompt": "summarise the ticket", "id": 7.0}
    u = sim_usage("think", req, "[think] summarise the ticket")
    assert u is not None and u.estimated and u.model == "sim"
    assert u.input_tokens == estimate_tokens(request_text(req))
    assert u.output_tokens == estimate_tokens("[think] summarise the ticket")
    assert sim_usage("is", {"condition": True}, True) is None   # decided without a request
    assert sim_usage("learn", {"fact": "x"}, 1.0) is None
    assert sim_usage("is", {"prompt": "rain?"}, False).output_tokens == 1  # "no"


def test_sim_reports_usage_on_the_context() -> None:
    async def go() -> list[Usage]:
        rt = Runtime()
        rt.attach()
        ctx = CallContext("think", "thinking", None, 1, rt)
        await SimProvider(latency_ms={"think": 0}).call("think", {"prompt": "hello"}, ctx)
        return ctx.usage

    usage = asyncio.run(go())
    assert usage == [Usage(estimate_tokens("hello"), estimate_tokens("[think] hello"), "sim",
                           estimated=True)]


def test_usage_rejects_negative_or_fractional_tokens() -> None:
    with pytest.raises(ValueError):
        Usage(-1, 0)
    with pytest.raises(ValueError):
        Usage(1.5, 0)  # type: ignore[arg-type]


def test_prices() -> None:
    assert parse_price("2.5,10") == Price(2.5, 10.0)
    for bad in ("2.5", "a,b", "-1,2", "nan,1", "1,inf", ""):
        with pytest.raises(ValueError):
            parse_price(bad)
    p = Pricing.from_config({"gpt-4o": {"input": 2.5, "output": 10}}, run_model="gpt-4o")
    assert p.cost(Usage(1_000_000, 100_000, "gpt-4o-2024-08-06")) == pytest.approx(3.5)
    assert Pricing().cost(Usage(10, 10, "x")) is None
    with pytest.raises(ValueError, match="needs both"):
        Pricing.from_config({"m": {"input": 1}})
    with pytest.raises(ValueError, match="unknown key"):
        Pricing.from_config({"m": {"input": 1, "output": 1, "cached": 1}})
    # --price prices every call of the run, whatever model the endpoint names
    run = Pricing({"other": Price(1, 1)}, run_model="m", run_price=Price(4, 8))
    assert run.cost(Usage(1_000_000, 0, "other")) == 4
    assert fmt_usd(None) == "unknown" and fmt_usd(0.0) == "$0" and fmt_usd(12.345) == "$12.35"


def test_meter_totals_and_budget() -> None:
    m = Meter(Pricing(run_price=Price(1_000_000, 0)), Budget(max_cost=5))
    assert m.spend([Usage(2, 0)]) == 2 and m.stop is None and m.refuse() is None
    assert m.spend([Usage(3, 7), Usage(1, 0)]) == 4
    assert m.total_cost == 6 and m.tokens == 13 and m.stop is not None
    assert "cost budget reached" in (m.refuse() or "") and m.stopped_calls == 1
    unpriced = Meter()
    unpriced.spend([Usage(5, 5)])
    assert unpriced.total_cost is None and unpriced.tokens == 10


def _program(n: int) -> Any:
    async def main(rt: Any) -> None:
        async def one(i: int) -> Any:
            return await rt.service("think", 0, {"prompt": f"item {i}" + "x" * 36})

        results = await asyncio.gather(*(one(i) for i in range(n)))
        rt.print(sum(1 for r in results if "_errors" in r), "refused")
    return main


def test_max_cost_stops_within_the_calls_in_flight() -> None:
    # 10 calls of ~(11 in + 13 out) tokens at once, 3 at a time: the budget is reached
    # while 3 are in flight; those finish, nothing new starts.
    settings = RunSettings(clock="virtual", max_concurrency=3, max_cost=30,
                           price=(1_000_000, 1_000_000))  # $1 a token: cost == tokens
    out, err = io.StringIO(), io.StringIO()
    meters: list[Meter] = []

    async def main(rt: Any) -> None:
        meters.append(rt.meter)
        await _program(10)(rt)

    code = run_program(main, settings, stdout=out, stderr=err)
    meter = meters[0]
    assert code == 3 and "cost budget reached" in err.getvalue()
    per_call = meter.tokens / meter.requests
    assert meter.requests == 3  # the first three finish together and pass 30 at once
    assert meter.cost - 30 <= 3 * per_call
    assert out.getvalue().strip() == "7 refused"
    assert "7 service calls not started" in err.getvalue()


def test_budget_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match="needs the price"):
        RunSettings(max_cost=1)
    with pytest.raises(SettingsError, match=r"\[pricing.gpt\]"):
        RunSettings(max_cost=1, pricing={"other": {"input": 1, "output": 1}},
                    provider=ProviderSettings(name="openai", base_url="http://h/v1",
                                              model="gpt"))
    RunSettings(max_cost=1, pricing={"sim": {"input": 1, "output": 1}})
    RunSettings(max_cost=1, price="2.5,10")
    with pytest.raises(SettingsError, match="max_tokens"):
        RunSettings(max_tokens=0)
    with pytest.raises(SettingsError, match="price"):
        RunSettings(price="1")
    assert RunSettings(otel_content=True).otel
