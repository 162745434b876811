"""Running a compiled program: shared by `cxpar run` and standalone ``python out.py``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cxpar.lang import parse_latency  # noqa: F401 - shared with `cxpar graph`

from .providers.sim import SimProvider
from .run import run_program


def run_factory(factory: Callable[[Any], Any], spans: Sequence[Any],
                sources: Mapping[str, str], *, clock: str = "real", seed: int = 0,
                latency: Mapping[str, float] | None = None, fail_rate: float = 0.0,
                timeout_rate: float = 0.0, provider: Any = None,
                max_concurrency: int | None = None, timeout_ms: float | None = 600_000,
                stats: bool = False, trace: str | None = None, **extra: Any) -> int:
    """Run ``factory(rt)`` (which registers handlers and returns the top level)."""
    if provider is None:
        provider = SimProvider(seed, latency_ms=latency, fail_rate=fail_rate,
                               timeout_rate=timeout_rate)
    holder: list[Any] = []

    def setup(rt: Any) -> None:
        holder.append(factory(rt))

    async def main(rt: Any) -> Any:
        return await holder[0](rt)

    return run_program(main, spans=spans, sources=sources, clock=clock, seed=seed,
                       provider=provider, timeout_ms=timeout_ms,
                       max_concurrency=max_concurrency, stats=stats, trace=trace,
                       setup=setup, **extra)


def main(factory: Callable[[Any], Any], spans: Sequence[Any], sources: Mapping[str, str],
         argv: list[str] | None = None) -> int:
    """The command line of a module written by ``cxpar compile -o out.py``."""
    ap = argparse.ArgumentParser(description="Run a CX program compiled by cxpar.")
    ap.add_argument("--clock", choices=["real", "virtual"], default="real")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency", default=None, help="per-service latency, e.g. think=800")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--max-concurrency", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=600_000, help="ms")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--trace", default=None)
    ap.add_argument("--provider", choices=["sim", "openai"],
                    default=os.environ.get("CXPAR_PROVIDER", "sim"),
                    help="sim (default) or any OpenAI-compatible endpoint [CXPAR_PROVIDER]")
    ap.add_argument("--base-url", default=os.environ.get("CXPAR_BASE_URL"),
                    help="openai: the endpoint, e.g. http://localhost:11434/v1 "
                         "[CXPAR_BASE_URL]")
    ap.add_argument("--model", default=os.environ.get("CXPAR_MODEL"),
                    help="openai: the model name [CXPAR_MODEL]; the key is read only from "
                         "CXPAR_API_KEY")
    ns = ap.parse_args(argv)
    try:
        latency = parse_latency(ns.latency)
    except ValueError as exc:
        ap.error(str(exc))
    provider = None
    if ns.provider == "openai":
        if not ns.base_url or not ns.base_url.startswith(("http://", "https://")):
            ap.error("--provider openai needs --base-url http(s)://... (or CXPAR_BASE_URL)")
        if not ns.model:
            ap.error("--provider openai needs --model (or CXPAR_MODEL)")
        if ns.clock == "virtual":
            ap.error("a real model needs the real clock (drop --clock virtual)")
        from .providers.openai import OpenAIProvider

        provider = OpenAIProvider(ns.base_url, ns.model,
                                  api_key=os.environ.get("CXPAR_API_KEY") or None)
    return run_factory(factory, spans, sources, clock=ns.clock, seed=ns.seed, latency=latency,
                       fail_rate=ns.fail_rate, max_concurrency=ns.max_concurrency,
                       timeout_ms=ns.timeout, stats=ns.stats, trace=ns.trace,
                       provider=provider)
