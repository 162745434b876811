"""``cxpar run`` resilience options: ``--breaker``, ``--limits``, ``--adaptive``,
``--capacity`` and the ``[breaker]``/``[limits]``/``[sim] capacity`` config sections.

Precedence (as for every setting): command line > ``cxpar.toml`` > defaults, key by key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from cxpar.driver import UsageError

__all__ = ["resilience_options", "build_resilience", "parse_capacity"]


def resilience_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options, passed to the command as ``breaker``, ``limits``, ``adaptive``,
    ``capacity``."""
    opts = [
        click.option("--breaker", "breaker", default=None, metavar="KEY=V,...|off",
                     help="Circuit breaker settings (as [breaker] in cxpar.toml), e.g. "
                          "failure_rate=0.5,window=10000,min_requests=20,cooldown_ms=10000,"
                          "half_open_probes=1,threshold=5; `off` disables breakers."),
        click.option("--limits", "limits", default=None, metavar="KEY=V,...",
                     help="Adaptive limit / scheduling settings (as [limits]), e.g. "
                          "algorithm=gradient,initial=10,min=1,max=1000,aging_ms=10000,"
                          "retry_budget=0.2."),
        click.option("--adaptive/--no-adaptive", "adaptive", default=None,
                     help="Adaptive concurrency limit per provider endpoint [default: on "
                          "when the sim has a --capacity]."),
        click.option("--capacity", "capacity", default=None, metavar="SVC=N,...",
                     help="Sim provider capacity model: calls a service handles at once "
                          "at full speed, e.g. think=50 (past it latency grows and 429s "
                          "appear)."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def parse_capacity(text: str | None) -> dict[str, float]:
    """``think=50,infer=20`` → ``{"think": 50.0, "infer": 20.0}`` (ValueError if bad)."""
    out: dict[str, float] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            num = float(value) if sep else -1.0
        except ValueError:
            num = -1.0
        if num <= 0:
            raise ValueError(f"expected SERVICE=CALLS (a number > 0) in --capacity, "
                             f"got `{part}`")
        out[name.strip()] = num
    return out


def build_resilience(path: Path, provider: Any, breaker: str | None, limits: str | None,
                     adaptive: bool | None, capacity: str | None) -> Any:
    """The run's :class:`~cxpar.runtime.resilience.Resilience`; sets the sim's capacity.

    Bad settings are usage errors (exit 2).
    """
    from cxpar.config import ConfigError, load_config
    from cxpar.runtime.resilience import Resilience, parse_settings

    try:
        config = load_config(start=path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    where = f" in `{config.path}`" if config.path else ""
    try:
        b_cfg: dict[str, Any] = config.section("breaker")
        l_cfg: dict[str, Any] = config.section("limits")
        sim_cap = config.get("sim", "capacity", {})
        if not isinstance(sim_cap, Mapping):
            raise ValueError(f"`capacity` under [sim]{where} must be a table: "
                             f"capacity = {{ think = 50 }}")
        cap = {str(k): v for k, v in sim_cap.items()}
        for k, v in cap.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"[sim] capacity `{k}`{where} must be a number > 0")
        res = Resilience.from_settings(b_cfg, l_cfg)
    except ValueError as exc:
        raise UsageError(f"{exc}{where if 'cxpar.toml' not in str(exc) else ''}") from None
    try:
        b_cli = parse_settings(breaker, "breaker")
        l_cli = parse_settings(limits, "limits")
        if adaptive is not None:
            l_cli["adaptive"] = adaptive
        cap.update(parse_capacity(capacity))
        from cxpar.runtime.adaptive import LimitsConfig
        from cxpar.runtime.breaker import BreakerConfig

        res = Resilience(BreakerConfig.from_mapping(b_cli, res.breaker_config),
                         LimitsConfig.from_mapping(l_cli, res.limits_config))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if cap:
        from cxpar.runtime.providers.sim import SimProvider

        if isinstance(provider, SimProvider):
            provider.capacity.update({k: float(v) for k, v in cap.items()})
    return res
