"""One frozen, picklable :class:`RunSettings` carries every option of a run.

**Where it comes from.** ``cxpar run`` / ``cxpar repl`` resolve it once with
:func:`cxpar.settings.resolve` — command line > environment > ``cxpar.toml`` > the
defaults below — outside the runtime; a standalone compiled module (``python out.py``)
builds it from its own arguments; the Python API and tests construct it directly.
However it is built, the constructor validates it (``__post_init__``, the one place):
a bad value raises :class:`SettingsError` naming the setting, and the CLI turns that
into a usage error (exit 2) that says where the value came from.

**Who reads it.** It travels whole: ``run_program`` / ``run_factory`` / ``run_batch``
→ :class:`~cxpar.runtime.scheduler.Runtime` (``rt.settings``), the batch streams and
the built-in providers (:func:`cxpar.runtime.providers.build_provider`). It pickles, so
it can be sent to worker processes as it is.

**Adding a setting** (journal, schedule, budgets, OTel, executors, …):

1. Add a field to :class:`RunSettings` (or :class:`ProviderSettings` for ``[provider]``)
   with ``option(default, ...)``. Every source is optional:
   ``toml="section.key"`` makes it a ``cxpar.toml`` key (the file's schema is derived
   from these fields, so the key is accepted *and* applied), ``env="CXPAR_NAME"`` an
   environment variable, ``cli="--flag"`` a ``cxpar run`` option generated from the
   field (``kind`` picks the parser for text values: ``str``, ``path`` (a file name the
   shell completes), ``int``, ``float``,
   ``bool``, ``choice`` + ``choices``, ``latency``/``capacity`` (``svc=N,…`` maps),
   ``table`` (``key=value,…``); ``flag=True`` for an on/off switch; ``help`` is the
   option's help and the docs' description).
2. Put its rules in the class's ``_validate`` (``_fail(name, message)`` per broken rule).
3. Read ``settings.<name>`` where it is used. Never thread a new keyword argument
   through ``run_program``/``run_batch``/``Runtime`` for it.
4. Add its row to the settings table in ``docs/cli.md`` (a test compares the table with
   these fields) and a test through the real CLI for its ``cxpar.toml`` key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any
from urllib.parse import urlsplit

from .adaptive import LimitsConfig
from .breaker import BreakerConfig
from .clock import DEFAULT_GUARD_S
from .providers.secrets import check_endpoint
from .schedule import POLICIES

__all__ = ["DEFAULT_ENDPOINT", "EXECUTORS", "EndpointSettings", "ProviderSettings",
           "RouteSettings", "RunSettings", "SIM_ENDPOINT", "SettingsError", "describe",
           "option", "setting_fields", "unknown_endpoint"]


#: Where a batch run's streams run (``--executor``).
EXECUTORS = ("local", "ray")


#: An HTTP header name (RFC 9110 token).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class SettingsError(ValueError):
    """A setting with a bad value. ``name`` is its dotted field name (``provider.model``)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(describe(name, message))
        self.name = name
        self.message = message


def describe(label: str, message: str) -> str:
    """``--timeout must be …`` / ``--seed: expected …``: ``label`` then ``message``."""
    sep = " " if message.startswith(("must ", "needs ")) else ": "
    return f"{label}{sep}{message}"


def option(default: Any = MISSING, *, factory: Any = None, toml: str | None = None,
           env: str | None = None, cli: str | None = None, kind: str = "str",
           choices: tuple[str, ...] = (), flag: bool = False, help: str = "",
           metavar: str | None = None, extra_cli: Mapping[str, str] | None = None,
           extra_help: Mapping[str, str] | None = None,
           extra_choices: Mapping[str, tuple[str, ...]] | None = None,
           nested: bool = False, item: type | None = None) -> Any:
    """A settings field with where it can come from (see the module docstring).

    ``extra_cli`` (``table`` fields): switches that set one key of the table, e.g.
    ``{"--adaptive/--no-adaptive": "adaptive"}``, or options taking its value
    (``{"--schedule": "schedule"}``, with ``extra_choices`` for the allowed values). ``nested``: a settings dataclass of
    its own (its fields carry their own sources). ``item`` (``kind="named"``): a table
    of named tables (``[endpoints.NAME]``), each read by ``item.from_mapping``.
    """
    meta = {"toml": toml, "env": env, "cli": cli, "kind": kind, "choices": choices,
            "flag": flag, "help": help, "metavar": metavar,
            "extra_cli": dict(extra_cli or {}), "extra_help": dict(extra_help or {}),
            "extra_choices": dict(extra_choices or {}),
            "nested": nested, "item": item}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def setting_fields(cls: type) -> list[tuple[str, Any]]:
    """``(dotted name, dataclass field)`` for every leaf setting of ``cls`` (nested too)."""
    out: list[tuple[str, Any]] = []
    for f in fields(cls):
        if f.metadata.get("nested"):
            sub_cls: type = f.default_factory  # type: ignore[assignment]
            out.extend((f"{f.name}.{name}", sub) for name, sub in setting_fields(sub_cls))
        else:
            out.append((f.name, f))
    return out


# ------------------------------------------------------------------------- checks

def _fail(name: str, message: str) -> None:
    raise SettingsError(name, message)


def _number(obj: Any, name: str, *, low: float | None = None, high: float | None = None,
            above: float | None = None, whole: bool = False, optional: bool = False) -> None:
    """Check (and normalise: ints for whole numbers, floats otherwise) one number field."""
    value = getattr(obj, name)
    if value is None and optional:
        return
    what = "a whole number" if whole else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(name, f"must be {what}, got {value!r}")
    if not math.isfinite(value):
        _fail(name, f"must be a finite number, got {value!r}")
    if whole and value != int(value):
        _fail(name, f"must be a whole number, got {value!r}")
    if low is not None and value < low:
        _fail(name, f"must be >= {low:g}, got {value!r}")
    if high is not None and value > high:
        _fail(name, f"must be <= {high:g}, got {value!r}")
    if above is not None and value <= above:
        _fail(name, f"must be > {above:g}, got {value!r}")
    object.__setattr__(obj, name, int(value) if whole else float(value))


def _choice(obj: Any, name: str, choices: tuple[str, ...]) -> None:
    value = getattr(obj, name)
    if value not in choices:
        _fail(name, f"must be one of {', '.join(choices)}, got {value!r}")


def _flag(obj: Any, name: str, *, optional: bool = False) -> None:
    value = getattr(obj, name)
    if not (isinstance(value, bool) or (optional and value is None)):
        _fail(name, f"must be true or false, got {value!r}")


def _text(obj: Any, name: str, *, optional: bool = True) -> None:
    value = getattr(obj, name)
    if not (isinstance(value, str) or (optional and value is None)):
        _fail(name, f"must be a string, got {value!r}")


def _number_map(obj: Any, name: str, *, positive: bool) -> None:
    value = getattr(obj, name)
    if not isinstance(value, Mapping):
        _fail(name, f"must be a table of service = number, got {value!r}")
    out: dict[str, float] = {}
    for key, num in value.items():
        ok = not isinstance(num, bool) and isinstance(num, (int, float)) \
            and math.isfinite(num) and (num > 0 if positive else num >= 0)
        if not ok:
            _fail(name, f"`{key}` must be a number {'> 0' if positive else '>= 0'}, "
                        f"got {num!r}")
        out[str(key)] = float(num)
    object.__setattr__(obj, name, out)


def check_url(url: str) -> str | None:
    """Why ``url`` is not a usable ``http(s)://host[:port]/…`` endpoint (None if it is)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port outside 0..65535 or not a number
    except ValueError as exc:
        return f"`{url}` is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"must start with http:// or https://, got `{url}`"
    if not parts.hostname:
        return f"`{url}` has no host name"
    if port == 0:
        return f"`{url}`: port 0 is not a valid port"
    return None


def unknown_endpoint(name: str, names: list[str]) -> str:
    """``unknown endpoint `gtp` (did you mean `gpt`?); configured endpoints: …``."""
    from difflib import get_close_matches

    close = get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean `{close[0]}`?)" if close else ""
    return (f"unknown endpoint `{name}`{hint}; configured endpoints: "
            + ", ".join(f"`{n}`" for n in names))


# ------------------------------------------------------------------------- provider

@dataclass(frozen=True)
class ProviderSettings:
    """Where service calls go (``[provider]``); plug-in providers that accept a
    ``settings=`` keyword receive this object."""

    name: str = option("sim", toml="provider.name", env="CXPAR_PROVIDER", cli="--provider", metavar="NAME",
                       help="AI provider: sim, openai, MODULE:ATTR or an entry-point name")
    base_url: str | None = option(None, toml="provider.base_url", env="CXPAR_BASE_URL",
                                  cli="--base-url", metavar="URL",
                                  help="openai: the endpoint, e.g. http://localhost:11434/v1")
    model: str | None = option(None, toml="provider.model", env="CXPAR_MODEL", cli="--model",
                               metavar="NAME",
                               help="openai: the model name")
    timeout_ms: float | None = option(None, toml="provider.timeout", kind="float",
                                      help="openai: per-request HTTP timeout, ms")
    max_connections: int = option(100, toml="provider.max_connections", kind="int",
                                  help="openai: HTTP connection pool size")
    http2: bool | None = option(None, toml="provider.http2", kind="bool",
                                help="openai: use HTTP/2 (needs the h2 package)")
    temperature: float | None = option(None, toml="provider.temperature", kind="float",
                                       help="openai: sampling temperature")
    max_tokens: int | None = option(None, toml="provider.max_tokens", kind="int",
                                    help="openai: reply length limit")
    headers: dict[str, str] = option(factory=dict, toml="provider.headers", kind="map",
                                     help="openai: extra HTTP headers")
    max_retries: int = option(2, toml="provider.max_retries", kind="int",
                              help="openai: transport retries of a request (connection "
                                   "errors, 408/409/429, 5xx; independent of CX `retries`)")
    max_response_mb: float = option(16.0, toml="provider.max_response_mb", kind="float",
                                    help="openai: largest response body accepted, MiB")

    def __post_init__(self) -> None:
        self._validate()

    def __repr__(self) -> str:  # headers may carry tokens: never shown
        return (f"ProviderSettings(name={self.name!r}, base_url={self.base_url!r}, "
                f"model={self.model!r})")

    def _validate(self) -> None:
        p = "provider."
        if not isinstance(self.name, str) or not self.name:
            _fail(p + "name", f"must be a provider name, got {self.name!r}")
        for key in ("base_url", "model"):
            if not isinstance(getattr(self, key), (str, type(None))):
                _fail(p + key, f"must be a string, got {getattr(self, key)!r}")
        if self.base_url is not None:
            try:  # first: no other message may show the password
                check_endpoint(self.base_url)
            except ValueError as exc:
                _fail(p + "base_url", str(exc))
            why = check_url(self.base_url)
            if why:
                _fail(p + "base_url", why)
        try:
            _number(self, "timeout_ms", above=0, optional=True)
            _number(self, "max_connections", low=1, whole=True)
            _flag(self, "http2", optional=True)
            _number(self, "temperature", low=0, optional=True)
            _number(self, "max_tokens", low=1, whole=True, optional=True)
            _number(self, "max_retries", low=0, high=100, whole=True)
            _number(self, "max_response_mb", above=0)
        except SettingsError as exc:
            raise SettingsError(p + exc.name, exc.message) from None
        if not isinstance(self.headers, Mapping) or not all(
                isinstance(v, str) for v in self.headers.values()):
            _fail(p + "headers", "must be a table of header = \"value\" strings")
        object.__setattr__(self, "headers", {str(k): v for k, v in self.headers.items()})
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                _fail(p + "headers", f"header name {name!r} is not a valid HTTP header name")
            if any(c in value for c in "\r\n\0"):
                _fail(p + "headers", f"the value of header `{name}` contains a line break or "
                      "NUL (it would split the request)")
        if self.name == "openai":
            if not self.base_url:
                _fail(p + "base_url", "the openai provider needs an endpoint: pass "
                      "`--base-url http://localhost:11434/v1` (or set CXPAR_BASE_URL, or "
                      "`base_url` under [provider] in cxpar.toml)")
            if not self.model:
                _fail(p + "model", "the openai provider needs a model: pass `--model "
                      "llama3.2` (or set CXPAR_MODEL, or `model` under [provider] in "
                      "cxpar.toml)")


# ------------------------------------------------------------------------- endpoints

#: The endpoint of the sim provider (always configured).
SIM_ENDPOINT = "sim"
#: The endpoint ``--provider``/``--base-url``/``--model`` describe (the sim's when the
#: provider is ``sim``).
DEFAULT_ENDPOINT = "default"
#: Where an endpoint's API key is read from unless ``api_key_env`` says otherwise.
DEFAULT_KEY_ENV = "CXPAR_API_KEY"


def _from_table(cls: type, data: Mapping[str, Any], where: str) -> Any:
    """``cls`` built from the TOML table ``where`` (ValueError naming the key)."""
    try:
        return cls(**_table(cls, data, where))
    except SettingsError as exc:
        raise ValueError(f"`{exc.name}` in {where} {exc.message}") from None


def _table(cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a table")
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ValueError(f"unknown key `{key}` in {where} (known: "
                             f"{', '.join(sorted(known))})")
    return dict(data)


@dataclass(frozen=True)
class EndpointSettings:
    """One ``[endpoints.NAME]`` table: an OpenAI-compatible endpoint (``base_url``,
    ``model``, the environment variable holding its key) and its limits. ``[endpoints.sim]``
    sets the sim's limits (and the model name it reports); ``[endpoints.default]`` the
    limits of the ``--provider`` endpoint (its URL and model stay in ``[provider]``)."""

    base_url: str | None = None
    model: str | None = None
    api_key_env: str = DEFAULT_KEY_ENV
    #: Requests per minute (any 60 s window); None: unlimited.
    rpm: float | None = None
    #: Prompt + completion tokens per minute (any 60 s window); None: unlimited.
    tpm: float | None = None
    #: Provider calls in flight on this endpoint at once; None: unlimited.
    max_concurrency: int | None = None

    def __post_init__(self) -> None:
        for key in ("base_url", "model"):
            _text(self, key)
        if not isinstance(self.api_key_env, str) or not self.api_key_env.strip() or \
                any(c.isspace() or c == "=" for c in self.api_key_env):
            _fail("api_key_env", f"must be an environment variable name, got "
                                 f"{self.api_key_env!r}")
        if self.base_url is not None:
            why = check_url(self.base_url)
            if why:
                _fail("base_url", why)
        _number(self, "rpm", above=0, optional=True)
        _number(self, "tpm", above=0, optional=True)
        _number(self, "max_concurrency", low=1, whole=True, optional=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], name: str = "") -> EndpointSettings:
        return _from_table(cls, data, f"[endpoints.{name}]")  # type: ignore[no-any-return]


@dataclass(frozen=True)
class RouteSettings:
    """One ``[routing.SERVICE]`` table: the endpoint and/or model of a service's calls
    (a call's ``endpoint:``/``model:`` props override it)."""

    endpoint: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        _text(self, "endpoint")
        _text(self, "model")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], name: str = "") -> RouteSettings:
        return _from_table(cls, data, f"[routing.{name}]")  # type: ignore[no-any-return]


def _endpoint_name_problem(name: str) -> str | None:
    ok = bool(name) and (name[0].isalpha() or name[0] == "_") and all(
        c.isalnum() or c in "_-" for c in name) and name.isascii()
    return None if ok else f"`{name}` is not a valid endpoint name (letters, digits, `_`, `-`)"


# ------------------------------------------------------------------------- the run

@dataclass(frozen=True)
class RunSettings:
    """Every option of one run (single or batch). Frozen; build a variant with
    :meth:`replace`. See the module docstring for how to add one."""

    # [run]
    clock: str = option("real", toml="run.clock", env="CXPAR_CLOCK", cli="--clock",
                        kind="choice", choices=("real", "virtual"),
                        help="Real time, or deterministic simulated time.")
    seed: int = option(0, toml="run.seed", env="CXPAR_SEED", cli="--seed", kind="int",
                       help="Seed for the sim provider, random() and retry jitter.")
    timeout_ms: float | None = option(600_000, toml="run.timeout", env="CXPAR_TIMEOUT",
                                      cli="--timeout", kind="float", metavar="MS",
                                      help="Stop the program (batch: each stream) after "
                                           "this many ms on the active clock (exit 3).")
    max_concurrency: int | None = option(None, toml="run.max_concurrency",
                                         env="CXPAR_MAX_CONCURRENCY",
                                         cli="--max-concurrency", kind="int",
                                         help="Global limit on provider calls in flight "
                                              "(handlers never count).")
    backend: str = option("python", toml="run.backend", env="CXPAR_BACKEND", cli="--backend",
                          kind="choice", choices=("python", "llvm"),
                          help="Code generator for the dispatch layer.")
    streams: int = option(100, toml="run.streams", env="CXPAR_STREAMS", cli="--streams",
                          kind="int", help="Batch run: streams in flight at once.")
    loop_limit_s: float = option(20.0, toml="run.loop_limit_s", env="CXPAR_LOOP_LIMIT_S",
                                 kind="float",
                                 help="Real seconds a loop may keep the event loop busy "
                                      "without reaching a service call, `await` or `new` "
                                      "(then a CX runtime error at the loop).")
    flood_limit: int = option(500_000, toml="run.flood_limit", env="CXPAR_FLOOD_LIMIT",
                              kind="int",
                              help="Handlers queued or running at once (a batch: per "
                                   "stream) before `emit` calls it an event flood.")
    strict: bool = option(False, toml="run.strict", env="CXPAR_STRICT", cli="--strict",
                          kind="bool", flag=True,
                          help="Exit 3 when any call failure was recorded only in `_errors` "
                               "(timeouts, provider errors, …), e.g. in CI.")
    # [sim]
    latency: dict[str, float] = option(factory=dict, toml="sim.latency", cli="--latency",
                                       kind="latency",
                                       help="Sim latency per service in ms, e.g. "
                                            "think=100,infer=50.")
    fail_rate: float = option(0.0, toml="sim.fail_rate", cli="--fail-rate", kind="float",
                              metavar="P",
                              help="Sim provider: probability that a call fails.")
    timeout_rate: float = option(0.0, toml="sim.timeout_rate", cli="--timeout-rate",
                                 kind="float", metavar="P",
                                 help="Sim provider: probability that a call never answers.")
    capacity: dict[str, float] = option(factory=dict, toml="sim.capacity", cli="--capacity",
                                        kind="capacity",
                                        help="Sim capacity model: calls a service handles "
                                             "at once at full speed, e.g. think=50 (past "
                                             "it latency grows and 429s appear).")
    # [provider]
    provider: ProviderSettings = option(factory=ProviderSettings, nested=True)
    # [endpoints.NAME], [routing.SERVICE] (docs/runtime.md "Endpoints and models")
    endpoints: dict[str, EndpointSettings] = option(
        factory=dict, toml="endpoints", kind="named", item=EndpointSettings,
        help="Named model endpoints: base_url, model, api_key_env, rpm, tpm, "
             "max_concurrency; `sim` and `default` set the limits of the sim and of "
             "the --provider endpoint.")
    routing: dict[str, RouteSettings] = option(
        factory=dict, toml="routing", kind="named", item=RouteSettings,
        help="Per service: the endpoint and/or model its calls use.")
    # [breaker], [limits]
    breaker: BreakerConfig = option(factory=BreakerConfig, toml="breaker", cli="--breaker",
                                    kind="table",
                                    help="Circuit breaker settings (as [breaker]): "
                                         "KEY=VALUE pairs joined by commas, e.g. "
                                         "threshold=3,cooldown_ms=5000; keys: failure_rate, "
                                         "window, min_requests, threshold, cooldown_ms, "
                                         "half_open_probes, enabled; `off` disables breakers.")
    limits: LimitsConfig = option(factory=LimitsConfig, toml="limits", cli="--limits",
                                  kind="table",
                                  extra_cli={"--adaptive/--no-adaptive": "adaptive",
                                             "--schedule": "schedule"},
                                  extra_help={"adaptive": "Adaptive concurrency limit per "
                                              "provider endpoint (as `adaptive` in [limits]) "
                                              "[default: on when the sim has a --capacity].",
                                              "schedule": "Order of provider calls waiting "
                                              "for a slot under a limit: program (whole "
                                              "programs first, then the critical path) or "
                                              "fifo (as `schedule` in [limits]) [default: "
                                              "program]."},
                                  extra_choices={"schedule": POLICIES},
                                  help="Adaptive limit and scheduling settings (as "
                                       "[limits]): KEY=VALUE pairs joined by commas, e.g. "
                                       "algorithm=aimd,max=50; keys: adaptive, algorithm, "
                                       "initial, min, max, schedule, aging_ms, "
                                       "retry_budget.")
    # observability (command line only)
    stats: bool = option(False, cli="--stats", kind="bool", flag=True,
                         help="Print a table per service and handler to stderr.")
    trace: str | None = option(None, cli="--trace", metavar="FILE", kind="path",
                               help="Write Chrome/Perfetto trace events to this file.")
    dashboard: bool = option(False, cli="--dashboard", kind="bool", flag=True,
                             help="Show a live view of handlers, services and streams on "
                                  "stderr.")
    stats_json: str | None = option(None, cli="--stats-json", metavar="FILE",
                                    help="Write the --stats numbers (tokens, cost, latency, "
                                         "critical path, streams) to FILE as JSON.")
    # costs and budgets (issue 19)
    price: tuple[float, float] | None = option(
        None, cli="--price", kind="price", metavar="IN,OUT",
        help="USD per million input and output tokens of the run's model, e.g. 2.5,10 "
             "(prices every call of the run; else [pricing.MODEL] in cxpar.toml).")
    pricing: dict[str, dict[str, float]] = option(
        factory=dict, toml="pricing", kind="pricing",
        help="Prices by model: [pricing.MODEL] input = USD, output = USD per million "
             "tokens.")
    max_cost: float | None = option(None, toml="run.max_cost", env="CXPAR_MAX_COST",
                                    cli="--max-cost", kind="float", metavar="USD",
                                    help="Budget: once the run has spent this many USD, no "
                                         "new provider call starts (`budget_exceeded`, "
                                         "exit 3). Needs prices.")
    max_tokens: int | None = option(None, toml="run.max_tokens", env="CXPAR_MAX_TOKENS",
                                    cli="--max-tokens", kind="int",
                                    help="Budget: once the run has used this many tokens "
                                         "(input + output), no new provider call starts "
                                         "(`budget_exceeded`, exit 3).")
    # OpenTelemetry (issue 19)
    otel: bool = option(False, toml="otel.enabled", env="CXPAR_OTEL", cli="--otel",
                        kind="bool", flag=True,
                        help="Export OpenTelemetry spans over OTLP/HTTP to "
                             "OTEL_EXPORTER_OTLP_ENDPOINT (pip install 'cxpar[otel]').")
    otel_content: bool = option(False, toml="otel.content", cli="--otel-content",
                                kind="bool", flag=True,
                                help="OpenTelemetry spans include prompts and answers "
                                     "(implies --otel).")
    otel_endpoint: str | None = option(None, toml="otel.endpoint",
                                       help="OTLP/HTTP endpoint, e.g. http://localhost:4318 "
                                            "(default: OTEL_EXPORTER_OTLP_ENDPOINT).")
    otel_service: str | None = option(None, toml="otel.service_name",
                                      help="service.name of the exported spans (default: "
                                           "OTEL_SERVICE_NAME, else cxpar).")
    # batch runs (command line only)
    input: str | None = option(None, cli="--input", metavar="RECORDS.jsonl", kind="path",
                               help="Batch run: one isolated stream per JSONL record, "
                                    "delivered as `input.record`; `emit output.record` "
                                    "writes result lines.")
    output: str | None = option(None, cli="--output", metavar="RESULTS.jsonl", kind="path",
                                help="Batch run: write result lines here (default: stdout).")
    ordered: bool = option(False, cli="--ordered", kind="bool", flag=True,
                           help="Batch run: write result lines in input order.")
    resume: bool = option(False, cli="--resume", kind="bool", flag=True,
                          help="Batch run: skip the records already in --output.")
    progress: bool = option(True, cli="--progress/--no-progress", kind="bool", flag=True,
                            help="Batch run: progress display on stderr.")
    # durable runs (docs/durability.md)
    journal: str | None = option(None, toml="run.journal", env="CXPAR_JOURNAL",
                                 cli="--journal", kind="path", metavar="PATH",
                                 help="Record every provider call in this SQLite journal "
                                      "and answer the calls it already holds from it (a "
                                      "resumed run pays for no completed call twice).")
    replay: str | None = option(None, cli="--replay", kind="path", metavar="PATH",
                                help="Answer every provider call from this journal and "
                                     "never contact a provider; a call it does not hold "
                                     "fails with `_errors` type `not_recorded`.")

    # where a batch run's streams run (docs/scaling.md)
    executor: str = option("local", toml="run.executor", env="CXPAR_EXECUTOR",
                           cli="--executor", kind="choice", choices=EXECUTORS,
                           help="Batch run: where streams run: local (this process) or "
                                "ray (Ray actors; pip install 'cxpar[ray]').")
    ray_address: str | None = option(None, toml="ray.address", env="CXPAR_RAY_ADDRESS",
                                     cli="--ray-address", metavar="ADDR",
                                     help="--executor ray: the cluster to join: auto (the "
                                          "one `ray start --head` started here) or "
                                          "HOST:PORT [default: start a local Ray runtime "
                                          "sized to this machine].")
    workers: int | None = option(None, toml="ray.workers", env="CXPAR_WORKERS",
                                 cli="--workers", kind="int",
                                 help="--executor ray: worker actors [default: the "
                                      "cluster's CPUs].")
    # internal: the real-time guard that stops a virtual run whose clock never advances
    guard_s: float = option(DEFAULT_GUARD_S, kind="float")

    def __post_init__(self) -> None:
        self._validate()

    @property
    def default_endpoint(self) -> str:
        """The name of the endpoint calls use unless routed: ``sim`` or ``default``."""
        return SIM_ENDPOINT if self.provider.name == SIM_ENDPOINT else DEFAULT_ENDPOINT

    def endpoint_names(self) -> list[str]:
        """Every endpoint a call may name: the default, ``sim`` and ``[endpoints.*]``."""
        names = [self.default_endpoint, SIM_ENDPOINT, *self.endpoints]
        return list(dict.fromkeys(n for n in names if n != DEFAULT_ENDPOINT or
                                  self.provider.name != SIM_ENDPOINT))

    def _validate_endpoints(self) -> None:
        if not isinstance(self.endpoints, Mapping) or not all(
                isinstance(v, EndpointSettings) for v in self.endpoints.values()):
            _fail("endpoints", "must be a table of [endpoints.NAME] tables")
        if not isinstance(self.routing, Mapping) or not all(
                isinstance(v, RouteSettings) for v in self.routing.values()):
            _fail("routing", "must be a table of [routing.SERVICE] tables")
        for name, ep in self.endpoints.items():
            why = _endpoint_name_problem(name)
            if why:
                _fail("endpoints", why)
            if name in (SIM_ENDPOINT, DEFAULT_ENDPOINT):
                if ep.base_url is not None:
                    _fail("endpoints", f"[endpoints.{name}] cannot have a `base_url`: "
                          + ("it is the sim" if name == SIM_ENDPOINT else
                             "the default endpoint's URL is `base_url` in [provider] "
                             "(or --base-url)"))
                if name == DEFAULT_ENDPOINT and ep.model is not None:
                    _fail("endpoints", "[endpoints.default] cannot have a `model`: the "
                                       "default endpoint's model is `model` in [provider] "
                                       "(or --model)")
                if name == DEFAULT_ENDPOINT and self.provider.name == SIM_ENDPOINT:
                    _fail("endpoints", "[endpoints.default] configures the --provider "
                                       "endpoint, but the provider is the sim: use "
                                       "[endpoints.sim]")
            elif ep.base_url is None:
                _fail("endpoints", f"[endpoints.{name}] needs a `base_url` (an "
                                   "OpenAI-compatible endpoint, e.g. "
                                   "\"http://localhost:11434/v1\")")
        names = self.endpoint_names()
        for service, route in self.routing.items():
            if route.endpoint is not None and route.endpoint not in names:
                _fail("routing", f"[routing.{service}]: {unknown_endpoint(route.endpoint, names)}")
        if self.clock == "virtual":
            for service, route in self.routing.items():
                ep_name = route.endpoint or self.default_endpoint
                if ep_name not in (SIM_ENDPOINT, DEFAULT_ENDPOINT):
                    _fail("routing", f"[routing.{service}] sends `{service}` to the HTTP "
                                     f"endpoint `{ep_name}`, which needs `--clock real`")

    def replace(self, **changes: Any) -> RunSettings:
        """A validated copy with ``changes`` (TypeError naming an unknown setting)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown setting `{unknown[0]}` (settings: "
                            f"{', '.join(sorted(known))})")
        return replace(self, **changes)

    @staticmethod
    def check(value: object, what: str = "settings") -> RunSettings:
        """``value`` if it is a :class:`RunSettings` (None: the defaults); TypeError
        naming ``what`` otherwise (the Python API's guard against misuse)."""
        if value is None:
            return RunSettings()
        if not isinstance(value, RunSettings):
            raise TypeError(f"{what} must be a cxpar.RunSettings, got "
                            f"{type(value).__name__}")
        return value

    def run_model(self) -> str | None:
        """The model the run's calls go to, as far as the settings know (the sim's is
        ``sim``; a plug-in provider's is unknown)."""
        if self.provider.name == "sim":
            return "sim"
        return self.provider.model

    def _validate_costs(self) -> None:
        from .cost import Pricing, check_price

        if self.price is not None:
            try:
                object.__setattr__(self, "price", check_price(self.price))
            except ValueError as exc:
                _fail("price", str(exc))
        if not isinstance(self.pricing, Mapping):
            _fail("pricing", "must be tables: [pricing.MODEL] input = 2.5, output = 10")
        try:
            table = Pricing.from_config(self.pricing)
        except ValueError as exc:
            _fail("pricing", str(exc))
        object.__setattr__(self, "pricing", {m: {"input": p.input, "output": p.output}
                                             for m, p in table.models.items()})
        _number(self, "max_cost", low=0, optional=True)
        _number(self, "max_tokens", low=1, whole=True, optional=True)
        if self.max_cost is not None and self.price is None:
            model = self.run_model()
            if not self.pricing or (model is not None and model not in self.pricing):
                where = f"[pricing.{model}]" if model else "[pricing.MODEL]"
                _fail("max_cost", f"needs the price of the run's model: pass --price IN,OUT "
                                  f"(USD per million tokens) or add {where} to cxpar.toml")

    def _validate(self) -> None:
        _choice(self, "clock", ("real", "virtual"))
        _number(self, "seed", whole=True)
        _number(self, "timeout_ms", low=0, optional=True)
        _number(self, "max_concurrency", low=1, whole=True, optional=True)
        _choice(self, "backend", ("python", "llvm"))
        _number(self, "streams", low=1, whole=True)
        _number(self, "loop_limit_s", above=0)
        _number(self, "flood_limit", low=1, whole=True)
        _number_map(self, "latency", positive=False)
        _number(self, "fail_rate", low=0, high=1)
        _number(self, "timeout_rate", low=0, high=1)
        _number_map(self, "capacity", positive=True)
        if not isinstance(self.provider, ProviderSettings):
            _fail("provider", f"must be a ProviderSettings, got {self.provider!r}")
        self._validate_endpoints()
        if not isinstance(self.breaker, BreakerConfig):
            _fail("breaker", f"must be a BreakerConfig, got {self.breaker!r}")
        if not isinstance(self.limits, LimitsConfig):
            _fail("limits", f"must be a LimitsConfig, got {self.limits!r}")
        for name in ("strict", "stats", "dashboard", "ordered", "resume", "progress", "otel",
                     "otel_content"):
            _flag(self, name)
        for name in ("trace", "input", "output", "journal", "replay", "stats_json",
                     "otel_endpoint", "otel_service"):
            _text(self, name)
        if self.journal is not None and self.replay is not None:
            _fail("replay", "cannot be combined with --journal (--journal records and "
                            "serves, --replay only serves)")
        self._validate_costs()
        if self.otel_content:
            object.__setattr__(self, "otel", True)
        if self.otel_endpoint is not None:
            why = check_url(self.otel_endpoint)
            if why:
                _fail("otel_endpoint", why)
        _number(self, "guard_s", above=0)
        _choice(self, "executor", EXECUTORS)
        _text(self, "ray_address")
        if self.ray_address is not None and not self.ray_address.strip():
            _fail("ray_address", "must be `auto` or HOST:PORT, got an empty string")
        _number(self, "workers", low=1, whole=True, optional=True)
        if self.input is None:
            for name in ("output", "resume", "ordered"):
                if getattr(self, name):
                    _fail(name, "needs --input (a batch run)")
        elif self.resume and self.output is None:
            _fail("resume", "needs --output (the results file to resume)")
        if self.provider.name == "openai" and self.clock == "virtual" and self.replay is None:
            _fail("clock", "the openai provider needs `--clock real`: on the virtual clock "
                           "every timeout would expire at once while waiting for the network")
