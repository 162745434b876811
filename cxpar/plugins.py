"""Plug-ins: providers and new service names (SPEC §6.3; docs/runtime.md "Providers and plug-ins").

**A provider** is any object with ``async def call(service, request, context) -> value``
(:class:`Provider`). ``request`` is the call's plain props (a fresh dict), ``context`` a
:class:`CallContext` (``service``, ``stem``, ``caller``, ``attempt``, ``runtime``,
``deadline``). Return the ``result`` value; for ``is``/``not`` return the decision for
the request (a boolean). Raise :class:`ProviderError` (``retryable=False`` to stop
``retries``, ``retry_after=seconds`` to wait longer) or any exception to fail the call;
let ``asyncio.CancelledError`` propagate (timeouts cancel the call). A provider may
declare ``services = {"summarize": "summarizing"}``: extra service names it answers.

Select one with ``cxpar run --provider NAME``:

- ``sim`` (default) or ``openai`` (an OpenAI-compatible endpoint);
- ``module:attr``: ``attr`` of an importable module (the current directory is on the
  path): a provider instance, or a class / factory called with no arguments (or with
  ``settings=`` a :class:`ProviderSettings` when it accepts that keyword);
- the name of an entry point in the ``cxpar.providers`` group (same rules).

**A service** adds a name usable as ``summarize { … }`` in CX, with its own event stem
(``summarizing.complete``)::

    import cxpar

    @cxpar.service("summarize", stem="summarizing")
    async def summarize(request, context):
        return request["text"][:100]

The implementation runs instead of the provider, under the call's ``timeout`` and
``retries``, alongside the call's parallel handler parameters. Modules listed as entry
points in the ``cxpar.services`` group are imported by ``cxpar run`` and ``cxpar check``
(an entry point may also load a ``{name: stem}`` mapping of names the provider answers).
``[services]`` in ``cxpar.toml`` (``summarize = "summarizing"``) declares names the
provider answers, so ``cxpar check`` knows them too.

Provider settings come from the command line, then the environment (``CXPAR_PROVIDER``,
``CXPAR_BASE_URL``, ``CXPAR_MODEL``), then ``[provider]`` in ``cxpar.toml``, then
defaults. The API key is read only from ``CXPAR_API_KEY``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxpar.driver import UsageError
from cxpar.runtime.providers.base import CallContext, Provider, ProviderError
from cxpar.runtime.scheduler import PLUGIN_SERVICES, service

if TYPE_CHECKING:
    from cxpar.config import Config

__all__ = [
    "CallContext", "PROVIDER_GROUP", "PluginError", "Provider", "ProviderError",
    "ProviderSettings", "SERVICE_GROUP", "import_object", "known_services",
    "load_provider_object", "load_service_plugins", "make_provider", "plugin_services",
    "prepare_check", "prepare_run", "register_services", "resolve_settings", "service",
]

PROVIDER_GROUP = "cxpar.providers"
SERVICE_GROUP = "cxpar.services"
BUILTIN_PROVIDERS = ("sim", "openai")
API_KEY_ENV = "CXPAR_API_KEY"
ENV = {"name": "CXPAR_PROVIDER", "base_url": "CXPAR_BASE_URL", "model": "CXPAR_MODEL"}


class PluginError(UsageError):
    """A provider or plug-in that cannot be set up (a usage error, exit 2)."""


@dataclass
class ProviderSettings:
    """Where to send service calls. ``origin`` says where each value came from."""

    name: str = "sim"
    base_url: str | None = None
    model: str | None = None
    timeout_ms: float | None = None
    max_connections: int = 100
    http2: bool | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # headers may carry tokens: never shown
        return (f"ProviderSettings(name={self.name!r}, base_url={self.base_url!r}, "
                f"model={self.model!r})")


def _typed(value: Any, kind: type | tuple[type, ...], key: str, where: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise PluginError(f"`{key}` in {where} must be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise PluginError(f"`{key}` in {where} must be {_kind_name(kind)}, "
                          f"got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
             dict: "a table"}
    if isinstance(kind, tuple):
        return "a number" if float in kind else " or ".join(names.get(k, k.__name__)
                                                             for k in kind)
    return names.get(kind, kind.__name__)


def resolve_settings(cli: Mapping[str, Any] | None = None, config: Config | None = None,
                     env: Mapping[str, str] | None = None) -> ProviderSettings:
    """Provider settings with precedence CLI > environment > ``[provider]`` > default.

    ``cli`` holds ``name``, ``base_url``, ``model`` (None = not given).
    """
    cli = cli or {}
    env = os.environ if env is None else env
    file = config.section("provider") if config is not None else {}
    where = f"[provider] of `{config.path}`" if config is not None and config.path \
        else "[provider]"
    s = ProviderSettings()
    for key in ("name", "base_url", "model"):
        if cli.get(key):
            setattr(s, key, str(cli[key]))
            s.origin[key] = "command line"
        elif env.get(ENV[key]):
            setattr(s, key, env[ENV[key]])
            s.origin[key] = ENV[key]
        elif file.get(key) is not None:
            setattr(s, key, _typed(file[key], str, key, where))
            s.origin[key] = where
    if "timeout" in file:
        t = float(_typed(file["timeout"], (int, float), "timeout", where))
        if t <= 0:
            raise PluginError(f"`timeout` in {where} must be > 0 (ms)")
        s.timeout_ms = t
    if "max_connections" in file:
        s.max_connections = _typed(file["max_connections"], int, "max_connections", where)
        if s.max_connections < 1:
            raise PluginError(f"`max_connections` in {where} must be >= 1")
    if "http2" in file:
        s.http2 = _typed(file["http2"], bool, "http2", where)
    if "temperature" in file:
        s.temperature = float(_typed(file["temperature"], (int, float), "temperature", where))
    if "max_tokens" in file:
        s.max_tokens = _typed(file["max_tokens"], int, "max_tokens", where)
    if "headers" in file:
        headers = _typed(file["headers"], dict, "headers", where)
        s.headers = {str(k): str(_typed(v, str, f"headers.{k}", where))
                     for k, v in headers.items()}
    return s


# ---------------------------------------------------------------------------- services
def register_services(mapping: Mapping[str, str]) -> None:
    """Declare service names the provider answers (``name → stem``).

    A name that already has an implementation (``@cxpar.service``) keeps it.
    """
    for name, stem in mapping.items():
        if name not in PLUGIN_SERVICES:
            PLUGIN_SERVICES[str(name)] = (str(stem or name), None)


def plugin_services(config: Config | None) -> dict[str, str]:
    """``[services]`` of ``cxpar.toml`` as ``name → stem`` (validated)."""
    if config is None:
        return {}
    out: dict[str, str] = {}
    for name, stem in config.section("services").items():
        if not str(name).isidentifier():
            raise PluginError(f"`{name}` in [services] is not a valid service name")
        if stem is True:
            stem = name
        out[str(name)] = str(_typed(stem, str, str(name), "[services]"))
    return out


def load_service_plugins() -> dict[str, str]:
    """Import the ``cxpar.services`` entry points; names they declare (``name → stem``)."""
    declared: dict[str, str] = {}
    for ep in entry_points(group=SERVICE_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - reported as a usage error
            raise PluginError(f"cannot load service plug-in `{ep.name}` ({ep.value}): "
                              f"{type(exc).__name__}: {exc}") from None
        if isinstance(obj, Mapping):
            declared.update({str(k): str(v) for k, v in obj.items()})
    register_services(declared)
    return declared


def known_services() -> dict[str, str]:
    """Every plug-in service name registered so far (``name → stem``)."""
    return {name: stem for name, (stem, _impl) in PLUGIN_SERVICES.items()}


# ---------------------------------------------------------------------------- providers
def import_object(spec: str) -> Any:
    """``module:attr`` (``attr`` may be dotted); the current directory is importable."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise PluginError(f"expected MODULE:ATTR, got `{spec}`")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - reported as a usage error
        raise PluginError(f"cannot import `{module}` for provider `{spec}`: "
                          f"{type(exc).__name__}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise PluginError(f"module `{module}` has no attribute `{attr}` "
                              f"(provider `{spec}`)") from None
    return obj


def load_provider_object(name: str) -> Any:
    """The object behind a provider name: ``module:attr`` or a ``cxpar.providers`` entry point."""
    if ":" in name:
        return import_object(name)
    for ep in entry_points(group=PROVIDER_GROUP):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:  # noqa: BLE001 - reported as a usage error
                raise PluginError(f"cannot load provider `{name}` ({ep.value}): "
                                  f"{type(exc).__name__}: {exc}") from None
    available = list(BUILTIN_PROVIDERS) + sorted(ep.name for ep in
                                                 entry_points(group=PROVIDER_GROUP))
    raise PluginError(f"unknown provider `{name}` (available: {', '.join(available)}, "
                      "or MODULE:ATTR)")


def _instantiate(obj: Any, settings: ProviderSettings, name: str) -> Any:
    if inspect.iscoroutinefunction(obj):
        raise PluginError(f"provider `{name}` is an async function, not a provider: a "
                          "provider is an object with `async def call(service, request, "
                          "context)` (to add a service, use @cxpar.service)")
    if inspect.isclass(obj) or (callable(obj) and not hasattr(obj, "call")):
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        try:
            obj = obj(settings=settings) if "settings" in params else obj()
        except Exception as exc:  # noqa: BLE001 - reported as a usage error
            raise PluginError(f"cannot create provider `{name}`: "
                              f"{type(exc).__name__}: {exc}") from None
    call = getattr(obj, "call", None)
    if call is None or not inspect.iscoroutinefunction(call):
        raise PluginError(f"provider `{name}` has no `async def call(service, request, "
                          "context)` method")
    return obj


def provider_services(obj: Any) -> dict[str, str]:
    """The ``services`` a provider object (or class) declares."""
    declared = getattr(obj, "services", None)
    if isinstance(declared, Mapping):
        return {str(k): str(v) for k, v in declared.items()}
    return {}


def make_provider(settings: ProviderSettings, *, seed: int = 0,
                  latency: Mapping[str, float] | None = None, fail_rate: float = 0.0,
                  timeout_rate: float = 0.0,
                  env: Mapping[str, str] | None = None) -> Any:
    """Build the provider ``settings`` names (sim options apply to ``sim`` only)."""
    env = os.environ if env is None else env
    name = settings.name
    if name == "sim":
        from cxpar.runtime.providers.sim import SimProvider
        return SimProvider(seed, latency_ms=latency, fail_rate=fail_rate,
                           timeout_rate=timeout_rate)
    if name == "openai":
        if not settings.base_url:
            raise PluginError("the openai provider needs an endpoint: pass `--base-url "
                              "http://localhost:11434/v1` (or set CXPAR_BASE_URL, or "
                              "`base_url` under [provider] in cxpar.toml)")
        if not settings.base_url.startswith(("http://", "https://")):
            raise PluginError(f"--base-url must start with http:// or https://, got "
                              f"`{settings.base_url}`")
        if not settings.model:
            raise PluginError("the openai provider needs a model: pass `--model llama3.2` "
                              "(or set CXPAR_MODEL, or `model` under [provider] in "
                              "cxpar.toml)")
        if settings.http2 and importlib.util.find_spec("h2") is None:
            raise PluginError("http2 = true needs the `h2` package (pip install h2)")
        from cxpar.runtime.providers.openai import OpenAIProvider
        return OpenAIProvider(settings.base_url, settings.model,
                              api_key=env.get(API_KEY_ENV) or None,
                              timeout_s=settings.timeout_ms / 1000 if settings.timeout_ms
                              else None,
                              max_connections=settings.max_connections,
                              http2=settings.http2, temperature=settings.temperature,
                              max_tokens=settings.max_tokens, headers=settings.headers)
    provider = _instantiate(load_provider_object(name), settings, name)
    register_services(provider_services(provider))
    return provider


# ---------------------------------------------------------------------------- commands
def _config(start: Path | None) -> Config:
    from cxpar.config import ConfigError, load_config
    try:
        return load_config(start=start)
    except ConfigError as exc:
        raise PluginError(str(exc)) from None


def prepare_run(path: Path, cli: Mapping[str, Any], *, clock: str, seed: int,
                latency: Mapping[str, float] | None = None, fail_rate: float = 0.0,
                timeout_rate: float = 0.0) -> tuple[Any, dict[str, str]]:
    """For ``cxpar run``: ``(provider, extra service names for the checker)``.

    Reads ``cxpar.toml`` (found from ``path``), loads ``cxpar.services`` entry points
    and the provider plug-in. Raises :class:`PluginError` (exit 2) on any problem.
    """
    config = _config(path)
    settings = resolve_settings(cli, config)
    register_services(plugin_services(config))
    load_service_plugins()
    if settings.name == "openai" and clock == "virtual":
        raise PluginError("the openai provider needs `--clock real`: on the virtual clock "
                          "every timeout would expire at once while waiting for the network")
    provider = make_provider(settings, seed=seed, latency=latency, fail_rate=fail_rate,
                             timeout_rate=timeout_rate)
    return provider, known_services()


def prepare_check(path: Path | None, provider: str | None = None) -> dict[str, str]:
    """For ``cxpar check``: the plug-in service names (``name → stem``) it should know.

    ``[services]`` of ``cxpar.toml``, ``cxpar.services`` entry points, and the services a
    plug-in provider (``--provider``/``CXPAR_PROVIDER``/``[provider] name``) registers or
    declares. The provider is imported, never instantiated.
    """
    config = _config(path)
    settings = resolve_settings({"name": provider}, config)
    register_services(plugin_services(config))
    load_service_plugins()
    if settings.name not in BUILTIN_PROVIDERS:
        register_services(provider_services(load_provider_object(settings.name)))
    return known_services()
