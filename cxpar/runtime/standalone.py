"""Running a compiled program: shared by `cxpar run` and standalone ``python out.py``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cxpar.lang import parse_latency  # noqa: F401 - shared with `cxpar graph`

from .providers import BUILTIN_PROVIDERS, build_provider
from .run import run_program
from .settings import ProviderSettings, RunSettings, SettingsError


def run_factory(factory: Callable[[Any], Any], spans: Sequence[Any],
                sources: Mapping[str, str], settings: RunSettings | None = None, *,
                provider: Any = None, **extra: Any) -> int:
    """Run ``factory(rt)`` (which registers handlers and returns the top level).

    ``extra`` goes to :func:`run_program` (``stdout``, ``stderr``, ``critical``).
    """
    holder: list[Any] = []

    def setup(rt: Any) -> None:
        rt.use_program(factory)
        holder.append(factory(rt))

    async def main(rt: Any) -> Any:
        return await holder[0](rt)

    return run_program(main, settings, spans=spans, sources=sources, provider=provider,
                       setup=setup, **extra)


#: The standalone module's options: flag → RunSettings field (``provider.x``: nested).
_STANDALONE = {"--clock": "clock", "--seed": "seed", "--latency": "latency",
               "--fail-rate": "fail_rate", "--timeout-rate": "timeout_rate",
               "--max-concurrency": "max_concurrency", "--timeout": "timeout_ms",
               "--stats": "stats", "--trace": "trace", "--provider": "provider.name",
               "--base-url": "provider.base_url", "--model": "provider.model",
               "--journal": "journal", "--replay": "replay"}


#: Settings the standalone module takes from the environment only (name → parser).
_STANDALONE_ENV = {"loop_limit_s": float, "flood_limit": int}


def standalone_settings(ns: argparse.Namespace) -> RunSettings:
    """The :class:`RunSettings` of a standalone run (SettingsError if a value is bad)."""
    top: dict[str, Any] = {}
    prov: dict[str, Any] = {}
    for name, parse in _STANDALONE_ENV.items():
        var = RunSettings.__dataclass_fields__[name].metadata["env"]
        if os.environ.get(var):
            try:
                top[name] = parse(os.environ[var])
            except ValueError:
                raise SettingsError(var, f"expected a number, got `{os.environ[var]}`") from None
    for flag, name in _STANDALONE.items():
        value = getattr(ns, flag[2:].replace("-", "_"))
        if name.startswith("provider."):
            if value is not None:
                prov[name.split(".", 1)[1]] = value
        else:
            top[name] = value
    top["latency"] = parse_latency(top["latency"])
    if prov.get("name", "sim") not in BUILTIN_PROVIDERS:
        raise SettingsError("--provider", f"must be sim or openai, got `{prov['name']}`")
    try:
        return RunSettings(provider=ProviderSettings(**prov), **top)
    except SettingsError as exc:
        flag = next((f for f, n in _STANDALONE.items() if n == exc.name), exc.name)
        raise SettingsError(flag, exc.message) from None


def main(factory: Callable[[Any], Any], spans: Sequence[Any], sources: Mapping[str, str],
         argv: list[str] | None = None) -> int:
    """The command line of a module written by ``cxpar compile -o out.py``."""
    ap = argparse.ArgumentParser(description="Run a CX program compiled by cxpar.")
    ap.add_argument("--clock", choices=["real", "virtual"], default="real")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--latency", default=None, help="per-service latency, e.g. think=800")
    ap.add_argument("--fail-rate", type=float, default=0.0)
    ap.add_argument("--timeout-rate", type=float, default=0.0)
    ap.add_argument("--max-concurrency", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=600_000, help="ms")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--trace", default=None)
    ap.add_argument("--provider", choices=["sim", "openai"],
                    default=os.environ.get("CXPAR_PROVIDER") or "sim",
                    help="sim (default) or any OpenAI-compatible endpoint [CXPAR_PROVIDER]")
    ap.add_argument("--base-url", default=os.environ.get("CXPAR_BASE_URL") or None,
                    help="openai: the endpoint, e.g. http://localhost:11434/v1 "
                         "[CXPAR_BASE_URL]")
    ap.add_argument("--model", default=os.environ.get("CXPAR_MODEL") or None,
                    help="openai: the model name [CXPAR_MODEL]; the key is read only from "
                         "CXPAR_API_KEY")
    ap.add_argument("--journal", default=None, metavar="PATH",
                    help="record provider calls in this journal and answer the ones it "
                         "holds from it (docs/durability.md)")
    ap.add_argument("--replay", default=None, metavar="PATH",
                    help="answer every provider call from this journal, never a provider")
    ns = ap.parse_args(argv)
    try:
        settings = standalone_settings(ns)
        provider = build_provider(settings)
    except (SettingsError, ValueError) as exc:
        ap.error(str(exc))
    if settings.journal is None and settings.replay is None:
        return run_factory(factory, spans, sources, settings, provider=provider)
    from cxpar.journal import JournalError, run_with_journal

    program, source = next(iter(sources.items()))
    try:
        return run_with_journal(
            settings, provider,
            lambda prov: run_factory(factory, spans, sources, settings, provider=prov),
            program=program, source=source, kind="module")
    except JournalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
