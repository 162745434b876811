"""Service providers: the interface (:mod:`.base`), the default simulator (:mod:`.sim`)
and :func:`build_provider`, which makes a built-in provider from a run's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .base import CallContext, Provider, ProviderError
from .sim import SimProvider

if TYPE_CHECKING:
    from ..settings import RunSettings

__all__ = ["API_KEY_ENV", "BUILTIN_PROVIDERS", "CallContext", "Provider", "ProviderError",
           "SimProvider", "build_provider"]

BUILTIN_PROVIDERS = ("sim", "openai")
#: The only place the API key is read from (never from settings or files).
API_KEY_ENV = "CXPAR_API_KEY"


def build_provider(settings: RunSettings, env: Mapping[str, str] | None = None) -> Any:
    """The built-in provider ``settings.provider.name`` names (``sim`` or ``openai``).

    Plug-in providers (``MODULE:ATTR``, entry points) are made by :mod:`cxpar.plugins`,
    outside the runtime. ValueError for any other name.
    """
    p = settings.provider
    if p.name == "sim":
        return SimProvider(settings.seed, latency_ms=settings.latency,
                           fail_rate=settings.fail_rate, timeout_rate=settings.timeout_rate,
                           capacity=settings.capacity)
    if p.name == "openai":
        from .openai import OpenAIProvider

        env = os.environ if env is None else env
        assert p.base_url and p.model  # validated by ProviderSettings
        return OpenAIProvider(p.base_url, p.model, api_key=env.get(API_KEY_ENV) or None,
                              timeout_s=p.timeout_ms / 1000 if p.timeout_ms else None,
                              max_connections=p.max_connections, http2=p.http2,
                              temperature=p.temperature, max_tokens=p.max_tokens,
                              headers=p.headers, max_retries=p.max_retries,
                              max_response_bytes=round(p.max_response_mb * 1024 * 1024))
    raise ValueError(f"`{p.name}` is not a built-in provider ({', '.join(BUILTIN_PROVIDERS)})")
