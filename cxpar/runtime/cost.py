"""Tokens, prices and budgets of a run (issue 19).

A :class:`Meter` is shared by everything one run (or one batch of streams) calls: each
provider attempt's :class:`~cxpar.runtime.providers.base.Usage` goes through
:meth:`Meter.spend`, which prices it and adds it to the run's totals, and before each
attempt the coordinator asks :attr:`Meter.stop` whether a budget (``--max-cost``,
``--max-tokens``) has been reached. Prices (:class:`Pricing`) are USD per million
tokens, from ``[pricing.MODEL]`` and ``--price IN,OUT``; a model without a price has an
unknown cost (``None``), never 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .providers.base import Usage

__all__ = ["Price", "Pricing", "Budget", "Meter", "BUDGET_ERROR", "parse_price",
           "check_price", "fmt_usd", "meter_for"]

#: The ``_errors`` type of a call a budget refused (never retried; ``--resume`` reruns).
BUDGET_ERROR = "budget_exceeded"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input and output tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1e6


def _usd(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be a number (USD per million tokens), "
                             f"got {value!r}") from None
    num = float(value)
    if math.isnan(num) or math.isinf(num) or num < 0:
        raise ValueError(f"{what} must be a number >= 0 (USD per million tokens), "
                         f"got {value!r}")
    return num


def parse_price(text: str) -> Price:
    """``--price IN,OUT`` (USD per million tokens) → :class:`Price`; ValueError if bad."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"expected IN,OUT (USD per million input and output tokens), "
                         f"e.g. 2.5,10; got `{text}`")
    return Price(_usd(parts[0], "IN"), _usd(parts[1], "OUT"))


def check_price(value: Any) -> tuple[float, float]:
    """A price setting (``"IN,OUT"``, a pair or a :class:`Price`) as ``(in, out)``."""
    if isinstance(value, str):
        p = parse_price(value)
    elif isinstance(value, Price):
        p = value
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        p = Price(_usd(value[0], "IN"), _usd(value[1], "OUT"))
    else:
        raise ValueError(f"must be IN,OUT (USD per million tokens), got {value!r}")
    return (p.input, p.output)


@dataclass(frozen=True, slots=True)
class Pricing:
    """Prices by model, plus the price of the run's own model (``--price``).

    :meth:`price_of` looks up, in order: ``--price`` (it prices every call of the run,
    whatever name the endpoint answers under), the answering model's table, the run's
    model's table.
    """

    models: Mapping[str, Price] = field(default_factory=dict)
    run_model: str | None = None
    run_price: Price | None = None

    @classmethod
    def from_config(cls, tables: Mapping[str, Any], *, run_model: str | None = None,
                    run_price: Price | None = None) -> Pricing:
        """``[pricing.MODEL] input = …, output = …`` tables (ValueError if malformed)."""
        models: dict[str, Price] = {}
        for model, table in tables.items():
            if not isinstance(table, Mapping):
                raise ValueError(f"[pricing.{model}] must be a table: "
                                 f"input = 2.5, output = 10 (USD per million tokens)")
            unknown = set(table) - {"input", "output"}
            if unknown:
                raise ValueError(f"unknown key `{sorted(unknown)[0]}` in [pricing.{model}] "
                                 f"(known: input, output)")
            if "input" not in table or "output" not in table:
                raise ValueError(f"[pricing.{model}] needs both `input` and `output` "
                                 f"(USD per million tokens)")
            models[str(model)] = Price(_usd(table["input"], f"[pricing.{model}] input"),
                                       _usd(table["output"], f"[pricing.{model}] output"))
        return cls(models, run_model, run_price)

    def price_of(self, model: str | None) -> Price | None:
        if self.run_price is not None:
            return self.run_price
        if model is not None and model in self.models:
            return self.models[model]
        if self.run_model is not None:
            return self.models.get(self.run_model)
        return None

    @property
    def any(self) -> bool:
        """Whether any price is known (without one, every cost is unknown)."""
        return self.run_price is not None or bool(self.models)

    @property
    def priced(self) -> bool:
        """Whether the run's own model has a price (needed by ``--max-cost``)."""
        return self.price_of(self.run_model) is not None

    def cost(self, usage: Usage) -> float | None:
        price = self.price_of(usage.model)
        return None if price is None else price.cost(usage)


@dataclass(frozen=True, slots=True)
class Budget:
    """``--max-cost`` (USD) and ``--max-tokens`` (input + output); None = no limit."""

    max_cost: float | None = None
    max_tokens: int | None = None

    @property
    def active(self) -> bool:
        return self.max_cost is not None or self.max_tokens is not None


def fmt_usd(value: float | None) -> str:
    """A cost for people: ``$0.0123``, ``$12.35``, ``unknown`` for None."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.6f}".rstrip("0")


#: What :meth:`Meter.totals` reports and :meth:`Meter.add_remote` adds.
COUNTED = ("tokens_in", "tokens_out", "cost", "unpriced", "requests", "stopped_calls",
           "stopped_records")


class Meter:
    """The run's token and cost totals, and its budget (shared by all streams)."""

    __slots__ = ("pricing", "budget", "tokens_in", "tokens_out", "cost", "unpriced",
                 "requests", "stop", "stopped_calls", "stopped_records", "t_stop")

    def __init__(self, pricing: Pricing | None = None, budget: Budget | None = None) -> None:
        self.pricing = pricing or Pricing()
        self.budget = budget or Budget()
        self.tokens_in = 0
        self.tokens_out = 0
        #: USD spent on priced requests.
        self.cost = 0.0
        #: Requests that reported usage but have no price (the cost is then unknown).
        self.unpriced = 0
        #: Requests that reported usage.
        self.requests = 0
        #: Why no new provider call may start (the budget reached), or None.
        self.stop: str | None = None
        #: Calls refused because of :attr:`stop`.
        self.stopped_calls = 0
        #: Batch records not started because of :attr:`stop`.
        self.stopped_records = 0
        self.t_stop: float | None = None

    @property
    def total_cost(self) -> float | None:
        """USD so far; None (unknown) when the run has no prices or a request with tokens
        had none."""
        return None if self.unpriced or not self.pricing.any else self.cost

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def spend(self, usage: Iterable[Usage], now: float | None = None) -> float | None:
        """Add one attempt's usage to the totals; its cost (None if unknown or no usage)
        — and check the budget."""
        total: float | None = 0.0
        any_usage = False
        for u in usage:
            any_usage = True
            self.requests += 1
            self.tokens_in += u.input_tokens
            self.tokens_out += u.output_tokens
            c = self.pricing.cost(u)
            if c is None:
                self.unpriced += 1
                total = None
            else:
                self.cost += c
                if total is not None:
                    total += c
        if any_usage:
            self._check(now)
        return total if any_usage else None

    def _check(self, now: float | None) -> None:
        if self.stop is not None:
            return
        b = self.budget
        if b.max_tokens is not None and self.tokens >= b.max_tokens:
            self.stop = (f"token budget reached: {self.tokens} tokens used, "
                         f"--max-tokens {b.max_tokens}")
        elif b.max_cost is not None and self.cost >= b.max_cost:
            self.stop = (f"cost budget reached: {fmt_usd(self.cost)} spent, "
                         f"--max-cost {b.max_cost:g} USD")
        if self.stop is not None:
            self.t_stop = now

    def totals(self) -> dict[str, float]:
        """What this meter counted so far (a Ray worker's, sent to the driver)."""
        return {k: getattr(self, k) for k in COUNTED}

    def add_remote(self, totals: Mapping[str, float],
                   before: Mapping[str, float] | None = None) -> None:
        """Add what a meter in another process counted since its ``before`` totals (its
        :meth:`totals` now and when last added), then check the budget."""
        for k in COUNTED:
            setattr(self, k, getattr(self, k) + totals.get(k, 0) -
                    (before.get(k, 0) if before else 0))
        if self.requests:
            self._check(None)

    def refuse(self) -> str | None:
        """The reason a new provider call may not start (and count it), or None."""
        if self.stop is None:
            return None
        self.stopped_calls += 1
        return self.stop


def meter_for(settings: Any, provider: Any = None) -> Meter:
    """The meter of a run: ``settings``' prices and budget, priced for the model
    ``provider`` answers with (its ``model`` attribute), else the settings' model."""
    model = getattr(provider, "model", None)
    if not (isinstance(model, str) and model):
        model = settings.run_model()
    price = Price(*settings.price) if settings.price is not None else None
    return Meter(Pricing.from_config(settings.pricing, run_model=model, run_price=price),
                 Budget(settings.max_cost, settings.max_tokens))
