"""Resilience state of one run: circuit breakers, adaptive limits, retry budgets.

One :class:`Resilience` per program run (batch streams share their runner's). Settings
come from ``[breaker]`` / ``[limits]`` in ``cxpar.toml`` and ``--breaker`` / ``--limits``
/ ``--adaptive`` on the command line (docs/runtime.md, "Resilience").

Keys: a provider that names its endpoint (an ``endpoint`` or ``base_url`` attribute)
gets one adaptive limit per endpoint (all services share the server) and one breaker
per service and endpoint (``think@http://…``); otherwise (the sim, plug-ins) both are
per service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .adaptive import AdaptiveLimiter, LimitsConfig
from .breaker import BreakerConfig, CircuitBreaker
from .limits import Limiter, RetryBudget
from .providers.secrets import shown_url

__all__ = ["Resilience", "BreakerConfig", "LimitsConfig", "endpoint_of", "parse_settings"]


def endpoint_of(provider: Any) -> str | None:
    """The provider's endpoint as it may be shown (breaker keys, dashboard): no user info."""
    ep = getattr(provider, "endpoint", None) or getattr(provider, "base_url", None)
    return shown_url(ep) if isinstance(ep, str) and ep else None


def parse_settings(text: str | None, what: str) -> dict[str, Any]:
    """``key=value,key=value`` (``--breaker``, ``--limits``); ``off`` → ``enabled=false``
    / ``adaptive=false``, ``on`` → true."""
    out: dict[str, Any] = {}
    if not text:
        return out
    flag = "enabled" if what == "breaker" else "adaptive"
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if part in ("on", "off", "auto"):
            out[flag] = part
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"expected KEY=VALUE in --{what}, got `{part}`")
        out[key.strip()] = value.strip()
    return out


class Resilience:
    """Breakers, adaptive limiters and retry budgets, created on first use."""

    @classmethod
    def with_threshold(cls, breaker_threshold: int, breaker_cooldown_ms: float) -> Resilience:
        """Defaults plus the legacy knobs: N failures in a row open a breaker (0: off)."""
        return cls(BreakerConfig(enabled=breaker_threshold > 0,
                                 threshold=max(0, breaker_threshold),
                                 cooldown_ms=breaker_cooldown_ms))

    def __init__(self, breaker: BreakerConfig | None = None,
                 limits: LimitsConfig | None = None) -> None:
        self.breaker_config = breaker or BreakerConfig()
        self.limits_config = limits or LimitsConfig()
        self.breakers: dict[str, CircuitBreaker] = {}
        self.limiters: dict[str, AdaptiveLimiter] = {}
        self.budgets: dict[str, RetryBudget] = {}

    @classmethod
    def from_settings(cls, breaker: Mapping[str, Any] | None = None,
                      limits: Mapping[str, Any] | None = None) -> Resilience:
        """From ``[breaker]``/``[limits]`` tables (ValueError for bad settings)."""
        return cls(BreakerConfig.from_mapping(breaker or {}),
                   LimitsConfig.from_mapping(limits or {}))

    # ------------------------------------------------------------ breakers
    def breaker_key(self, provider: Any, service: str) -> str:
        ep = endpoint_of(provider)
        return service if ep is None else f"{service}@{ep}"

    def breaker(self, key: str, store: dict[str, CircuitBreaker] | None = None,
                ) -> CircuitBreaker | None:
        if not self.breaker_config.enabled:
            return None
        d = self.breakers if store is None else store
        b = d.get(key)
        if b is None:
            b = d[key] = self.breaker_config.make()
        return b

    # ------------------------------------------------------------ limits
    def global_limiter(self, max_concurrency: int | None) -> Limiter | None:
        """The ``--max-concurrency`` limit on provider calls (None: no limit), ordered by
        ``[limits] schedule`` with ``aging_ms``."""
        if not max_concurrency:
            return None
        cfg = self.limits_config
        return Limiter(max_concurrency, cfg.aging_ms / 1000, cfg.schedule)

    def may_queue(self, provider: Any) -> bool:
        """Whether provider calls may wait for an adaptive limit's slot."""
        on = self.limits_config.adaptive
        if on is None:
            cap = getattr(provider, "capacity", None)
            return isinstance(cap, Mapping) and bool(cap)
        return on

    def adaptive_for(self, provider: Any, service: str, model: str | None = None,
                     ) -> AdaptiveLimiter | None:
        """The adaptive limit of ``provider``'s endpoint (the sim: of ``service``), and of
        ``model`` when a call chose one; None when adaptive limits are off."""
        cfg = self.limits_config
        on = cfg.adaptive
        if on is None:  # auto: the sim with a capacity model for this service
            cap = getattr(provider, "capacity", None)
            on = isinstance(cap, Mapping) and service in cap
        if not on:
            return None
        key = endpoint_of(provider) or service
        if model:
            key += f"/{model}"
        lim = self.limiters.get(key)
        if lim is None:
            lim = self.limiters[key] = AdaptiveLimiter.from_config(cfg)
        return lim

    # ------------------------------------------------------------ retry budgets
    def budget(self, service: str) -> RetryBudget:
        b = self.budgets.get(service)
        if b is None:
            b = self.budgets[service] = RetryBudget(self.limits_config.retry_budget)
        return b
