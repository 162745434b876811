"""Endpoints and models per call (docs/runtime.md "Endpoints and models").

An :class:`Endpoints` table holds every endpoint a call may use: ``sim`` (always), the
``--provider`` endpoint (``default``; the same as ``sim`` when the provider is the sim)
and each ``[endpoints.NAME]`` of ``cxpar.toml`` (an OpenAI-compatible server). A call
goes to the endpoint its ``endpoint:`` prop names, else ``[routing.SERVICE] endpoint``,
else the default; its model is its ``model:`` prop, else ``[routing.SERVICE] model``,
else the endpoint's own.

The table is itself a provider: ``call`` hands the request to the endpoint the
coordinator chose (``context.endpoint``), so a wrapper around it (the journal) sees every
endpoint's calls. Limits (``max_concurrency``, ``rpm``/``tpm``), breakers and adaptive
limits are per endpoint (and model); the coordinator applies them through
:class:`Route`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import CxRuntimeError
from .limits import Limiter
from .providers.base import CallContext, ProviderError
from .ratelimit import RateLimiter
from .settings import (
    DEFAULT_ENDPOINT,
    SIM_ENDPOINT,
    EndpointSettings,
    RunSettings,
    unknown_endpoint,
)

__all__ = ["Endpoint", "Endpoints", "Route", "as_endpoints", "build_endpoints", "endpoints_of"]


@dataclass(eq=False)
class Endpoint:
    """One endpoint: its provider, default model, limits and shared state."""

    name: str
    provider: Any
    model: str | None
    config: EndpointSettings = field(default_factory=EndpointSettings)
    #: HTTP endpoints need the real clock.
    http: bool = False
    #: ``max_concurrency``: provider calls in flight on this endpoint (None: no limit).
    limiter: Limiter | None = None
    #: ``rpm``/``tpm`` and server-announced pauses (:mod:`.ratelimit`).
    rate: RateLimiter | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Where one call goes: the endpoint and the effective model."""

    endpoint: Endpoint
    #: The model the call asks for (None: the provider's own default).
    model: str | None
    #: The model was chosen for this call (``model:`` prop or ``[routing]``), not the
    #: endpoint's default: it is part of the journal key.
    chosen: bool

    @property
    def key(self) -> str:
        """``endpoint`` or ``endpoint/model``: how breakers, limits and stats tell
        endpoints and models apart."""
        ep = self.endpoint.name
        return f"{ep}/{self.model}" if self.chosen and self.model else ep


class Endpoints:
    """The endpoints of a run; also the provider the runtime calls (see module doc)."""

    cx_endpoints: Endpoints

    def __init__(self, table: Mapping[str, Endpoint], default: str,
                 routing: Mapping[str, Any] | None = None) -> None:
        self.table = dict(table)
        self.default = default
        self.routing = dict(routing or {})
        self.cx_endpoints = self
        self._routes: dict[tuple[str, str | None, str | None], Route] = {}

    def __repr__(self) -> str:
        return f"Endpoints({', '.join(self.table)}; default {self.default})"

    def __getattr__(self, name: str) -> Any:
        # attribute reads meant for "the provider" (capacity, memory, …) go to the default
        if name in ("table", "default"):
            raise AttributeError(name)
        return getattr(self.table[self.default].provider, name)

    @property
    def names(self) -> list[str]:
        return list(self.table)

    @property
    def default_provider(self) -> Any:
        return self.table[self.default].provider

    def route(self, service: str, endpoint: Any = None, model: Any = None,
              span: int = -1) -> Route:
        """The route of one call (``endpoint``/``model``: its props, None if absent);
        CxRuntimeError for an unknown endpoint or a prop that is not a string."""
        key = (service, endpoint, model)
        hit = self._routes.get(key) if type(endpoint) in (str, type(None)) and \
            type(model) in (str, type(None)) else None
        if hit is not None:
            return hit
        for prop, value in (("endpoint", endpoint), ("model", model)):
            if value is not None and (type(value) is not str or not value):
                raise CxRuntimeError(f"`{prop}` must be a non-empty string, got "
                                     f"{_shown(value)}", span)
        rt_route = self.routing.get(service)
        name = endpoint or (rt_route.endpoint if rt_route is not None else None) or self.default
        ep = self.table.get(name)
        if ep is None:
            raise CxRuntimeError(unknown_endpoint(name, self.names), span)
        chosen_model = model or (rt_route.model if rt_route is not None else None)
        out = Route(ep, chosen_model or ep.model, chosen_model is not None)
        self._routes[key] = out
        return out

    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        ep = self.table.get(getattr(context, "endpoint", None) or self.default)
        if ep is None:  # pragma: no cover - the coordinator routes first
            raise ProviderError(f"unknown endpoint `{context.endpoint}`", retryable=False)
        if ep.http:
            import asyncio

            from .clock import VirtualEventLoop

            if isinstance(asyncio.get_running_loop(), VirtualEventLoop):
                raise ProviderError(f"endpoint `{ep.name}` is an HTTP endpoint and needs "
                                    "`--clock real`", retryable=False)
        return await ep.provider.call(service, request, context)


def _shown(value: Any) -> str:
    from .values import type_name

    return type_name(value)


def endpoints_of(provider: Any) -> Endpoints | None:
    """The :class:`Endpoints` behind ``provider`` (through wrappers such as the
    journal's), or None when it is a plain provider."""
    try:
        eps = getattr(provider, "cx_endpoints", None)
    except Exception:  # noqa: BLE001 - a plug-in's __getattr__ may raise anything
        return None
    return eps if isinstance(eps, Endpoints) else None


def build_endpoints(settings: RunSettings, default: Any = None,
                    env: Mapping[str, str] | None = None) -> Endpoints:
    """The endpoints of a run: ``default`` (the ``--provider`` one; built from
    ``settings`` when None), ``sim`` and every ``[endpoints.NAME]``."""
    from . import providers as P

    env = os.environ if env is None else env
    if default is None:
        default = P.build_provider(settings, env)
    dname = settings.default_endpoint
    cfg = settings.endpoints
    p = settings.provider
    table: dict[str, Endpoint] = {}
    dmodel = p.model if p.name != SIM_ENDPOINT else (cfg[SIM_ENDPOINT].model
                                                     if SIM_ENDPOINT in cfg else None)
    table[dname] = Endpoint(dname, default, dmodel, cfg.get(dname, EndpointSettings()),
                            http=p.name == "openai")
    if SIM_ENDPOINT not in table:
        sim_cfg = cfg.get(SIM_ENDPOINT, EndpointSettings())
        table[SIM_ENDPOINT] = Endpoint(SIM_ENDPOINT, P.SimProvider(
            settings.seed, latency_ms=settings.latency, fail_rate=settings.fail_rate,
            timeout_rate=settings.timeout_rate, capacity=settings.capacity),
            sim_cfg.model, sim_cfg)
    for name, ep_cfg in cfg.items():
        if name in (SIM_ENDPOINT, DEFAULT_ENDPOINT):
            continue
        from .providers.openai import OpenAIProvider

        assert ep_cfg.base_url is not None  # validated by RunSettings
        table[name] = Endpoint(name, OpenAIProvider(
            ep_cfg.base_url, ep_cfg.model or "", api_key=env.get(ep_cfg.api_key_env) or None,
            timeout_s=p.timeout_ms / 1000 if p.timeout_ms else None,
            max_connections=p.max_connections, http2=p.http2, temperature=p.temperature,
            max_tokens=p.max_tokens, headers=p.headers), ep_cfg.model, ep_cfg, http=True)
    lim_cfg = settings.limits
    for ep in table.values():
        ep.rate = RateLimiter(ep.config.rpm, ep.config.tpm)
        if ep.config.max_concurrency:
            ep.limiter = Limiter(ep.config.max_concurrency, lim_cfg.aging_ms / 1000,
                                 lim_cfg.schedule)
    return Endpoints(table, dname, settings.routing)


def as_endpoints(provider: Any, settings: RunSettings) -> Any:
    """``provider`` if it already routes endpoints (an :class:`Endpoints`, or a wrapper
    of one), else the run's endpoints with ``provider`` (or the built-in one
    ``settings`` names, when None) as the default."""
    if provider is not None and endpoints_of(provider) is not None:
        return provider
    return build_endpoints(settings, provider)
