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
defaults (:func:`cxpar.settings.resolve`). The API key is read only from ``CXPAR_API_KEY``.

Provider code is imported only to run a program (``cxpar run``, ``repl``): ``check``,
``graph`` and ``compile`` never import a provider named by ``cxpar.toml`` or the
environment; ``cxpar check --provider MODULE:ATTR`` (typed by the user) is the one way to
let the checker learn the services a plug-in provider declares.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from cxpar.driver import UsageError
from cxpar.runtime.providers import BUILTIN_PROVIDERS, build_provider
from cxpar.runtime.providers.base import CallContext, Provider, ProviderError
from cxpar.runtime.scheduler import PLUGIN_SERVICES, service
from cxpar.runtime.settings import ProviderSettings, RunSettings

if TYPE_CHECKING:
    from cxpar.config import Config

__all__ = [
    "CallContext", "PROVIDER_GROUP", "PluginError", "Provider", "ProviderError",
    "ProviderSettings", "SERVICE_GROUP", "import_object", "known_services",
    "load_provider_object", "load_service_plugins", "make_provider", "plugin_services",
    "prepare_check", "prepare_run", "register_services", "service",
]

PROVIDER_GROUP = "cxpar.providers"
SERVICE_GROUP = "cxpar.services"


class PluginError(UsageError):
    """A provider or plug-in that cannot be set up (a usage error, exit 2)."""


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
        if not isinstance(stem, str):
            raise PluginError(f"`{name}` in [services] must be a string (the event stem), "
                              f"got {type(stem).__name__}")
        out[str(name)] = stem
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


def make_provider(settings: RunSettings, *, env: Mapping[str, str] | None = None) -> Any:
    """The provider ``settings.provider`` names — built-in (sim options apply to ``sim``
    only) or a plug-in, which receives ``settings.provider`` as ``settings=`` — as the
    default endpoint of the run's :class:`~cxpar.runtime.endpoints.Endpoints`."""
    from cxpar.runtime.endpoints import build_endpoints

    name = settings.provider.name
    if name in BUILTIN_PROVIDERS:
        if name == "openai" and settings.provider.http2 and importlib.util.find_spec("h2") is None:
            raise PluginError("http2 = true needs the `h2` package (pip install h2)")
        try:
            return build_endpoints(settings, build_provider(settings, env), env)
        except ValueError as exc:  # e.g. an API key no HTTP header can carry
            raise PluginError(str(exc)) from None
    provider = _instantiate(load_provider_object(name), settings.provider, name)
    register_services(provider_services(provider))
    return build_endpoints(settings, provider, env)


# ---------------------------------------------------------------------------- commands
def prepare_run(settings: RunSettings, config: Config | None = None,
                ) -> tuple[Any, dict[str, str]]:
    """For ``cxpar run``: ``(provider, extra service names for the checker)``.

    Registers ``[services]`` of ``config``, loads ``cxpar.services`` entry points and
    makes the provider (importing a plug-in). Raises :class:`PluginError` (exit 2).
    """
    register_services(plugin_services(config))
    load_service_plugins()
    return make_provider(settings), known_services()


def prepare_check(config: Config | None, provider: str | None = None) -> dict[str, str]:
    """For ``check``, ``graph``, ``compile``: the plug-in service names (``name → stem``).

    ``[services]`` of ``config``, ``cxpar.services`` entry points, and — only when the
    user names one on the command line (``provider``) — the services a plug-in provider
    declares. A provider named by ``cxpar.toml`` or the environment is never imported.
    """
    register_services(plugin_services(config))
    load_service_plugins()
    if provider and provider not in BUILTIN_PROVIDERS:
        register_services(provider_services(load_provider_object(provider)))
    return known_services()
