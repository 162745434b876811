"""Resolving a run's :class:`~cxpar.runtime.settings.RunSettings` (outside the runtime).

:func:`resolve` takes each setting from the first source that gives it — the command
line, then the environment (``CXPAR_*``), then ``cxpar.toml``, then the default — and
builds the frozen settings object once; tables (``[breaker]``, ``[limits]``, sim
``latency``/``capacity``) are merged key by key in the same order. Every problem is a
:class:`~cxpar.driver.UsageError` (exit 2) that names where the bad value came from
(``--timeout``, ``CXPAR_TIMEOUT``, ``timeout in [run] of `cxpar.toml```).

:func:`settings_options` generates the click options of the settings that have a
``cli`` flag, so a new field (see :mod:`cxpar.runtime.settings`) appears on ``cxpar run``
with no further code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cxpar.config import Config, ConfigError, load_config
from cxpar.driver import UsageError

__all__ = ["Resolved", "config_option", "parse_capacity", "resolve", "settings_options",
           "show"]

COMMAND_LINE = "command line"


@dataclass
class Resolved:
    """The settings, where each came from (dotted name → label), and the config used."""

    settings: Any
    origins: dict[str, str] = field(default_factory=dict)
    config: Config = field(default_factory=Config)

    def config_notice(self) -> str | None:
        """``cxpar: provider … from `path``` when ``cxpar.toml`` chose the provider or
        its endpoint (issue 14: a planted file must not switch providers silently)."""
        path = self.config.path
        if path is None:
            return None
        p = self.settings.provider
        parts = []
        if self.origins.get("provider.name", "").endswith(f"`{path}`"):
            parts.append(f"provider `{p.name}`")
        if p.base_url and self.origins.get("provider.base_url", "").endswith(f"`{path}`"):
            parts.append(f"base URL `{shown_url(p.base_url)}`")
        if not parts:
            return None
        return f"cxpar: {' and '.join(parts)} from `{path}`"


def shown_url(url: str) -> str:
    """``url`` without any user name or password (for messages)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
    except ValueError:
        return url.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


# ------------------------------------------------------------------------- parsers

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
        if not num > 0 or num == float("inf"):
            raise ValueError(f"expected SERVICE=CALLS (a number > 0), got `{part}`")
        out[name.strip()] = num
    return out


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got `{text}`") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got `{text}`") from None


def _parse_bool(text: str) -> bool:
    from cxpar.runtime.validate import switch

    flag = switch(text.strip())
    if flag is None:
        raise ValueError(f"expected true or false, got `{text}`")
    return flag


def _parse_price(text: str) -> tuple[float, float]:
    from cxpar.runtime.cost import check_price

    return check_price(text)


def _parse_table(what: str) -> Callable[[str], dict[str, Any]]:
    def parse(text: str) -> dict[str, Any]:
        from cxpar.runtime.resilience import parse_settings

        return parse_settings(text, what)
    return parse


def _parser(name: str, kind: str) -> Callable[[str], Any]:
    from cxpar.lang import parse_latency

    parsers: dict[str, Callable[[str], Any]] = {
        "str": str, "path": str, "choice": str, "int": _parse_int, "float": _parse_float,
        "bool": _parse_bool, "latency": parse_latency, "capacity": parse_capacity,
        "table": _parse_table(name.rsplit(".", 1)[-1]), "price": _parse_price,
    }
    if kind not in parsers:
        raise ValueError("cannot be given as text")
    return parsers[kind]


# ------------------------------------------------------------------------- click options

def _dest(name: str) -> str:
    return name.replace(".", "__")


def _metavar(meta: Mapping[str, Any]) -> str | None:
    if meta["metavar"]:
        return str(meta["metavar"])
    return {"int": "N", "float": "NUM", "latency": "SVC=MS,...", "capacity": "SVC=N,...",
            "table": "KEY=V,...", "str": "TEXT", "path": "PATH"}.get(meta["kind"])


def _default_text(f: Any) -> str | None:
    if f.default is MISSING or f.default is None or f.metadata["flag"]:
        return None
    return str(f.default)


def settings_options(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Click options for the settings ``names`` (dotted; all with a ``cli`` flag if none
    given), in field order. Values arrive as keyword arguments for :func:`resolve`."""
    import click

    from cxpar.runtime.settings import RunSettings, setting_fields

    chosen = [(n, f) for n, f in setting_fields(RunSettings)
              if f.metadata.get("cli") and (not names or n in names)]

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        opts = []
        for name, f in chosen:
            meta = f.metadata
            extra = [s for s in (f"env {meta['env']}" if meta["env"] else None,
                                 f"default: {_default_text(f)}" if _default_text(f) else None)
                     if s]
            help_text = meta["help"] + (f" [{'; '.join(extra)}]" if extra else "")
            if meta["flag"]:
                flag_kw: dict[str, Any] = {} if "/" in meta["cli"] else {"is_flag": True}
                opts.append(click.option(meta["cli"], _dest(name), default=None,
                                         help=help_text, **flag_kw))
            elif meta["kind"] == "choice":
                opts.append(click.option(meta["cli"], _dest(name), default=None,
                                         type=click.Choice(meta["choices"]), help=help_text))
            else:
                opts.append(click.option(meta["cli"], _dest(name), default=None,
                                         metavar=_metavar(meta), help=help_text,
                                         type=click.Path() if meta["kind"] == "path"
                                         else None))
            for flag, key in meta["extra_cli"].items():
                choices = meta["extra_choices"].get(key)
                kw: dict[str, Any] = {"type": click.Choice(choices)} if choices else {}
                opts.append(click.option(flag, _dest(f"{name}.{key}"), default=None,
                                         help=meta["extra_help"].get(key, f"`{key}` in "
                                                                          f"[{name}]."), **kw))
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return deco


def config_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--config PATH``: use this ``cxpar.toml`` instead of searching for one."""
    import click

    return click.option("--config", "config_path", default=None, metavar="PATH",
                        type=click.Path(),
                        help="Use this config file instead of searching for cxpar.toml "
                             "[env CXPAR_CONFIG].")(fn)


# ------------------------------------------------------------------------- resolve

def _file_label(key: str, section: str, path: Path | None) -> str:
    where = f" of `{path}`" if path else ""
    return f"`{key}` in [{section}]{where}"


def resolve(params: Mapping[str, Any], *, program: Path | None = None,
            config_path: str | None = None, env: Mapping[str, str] | None = None,
            config: Config | None = None) -> Resolved:
    """Build the run's settings from ``params`` (the click keyword arguments of
    :func:`settings_options`), ``env`` and the ``cxpar.toml`` found from ``program``."""
    from cxpar.runtime.settings import (
        ProviderSettings,
        RunSettings,
        SettingsError,
        describe,
        setting_fields,
    )

    env = os.environ if env is None else env
    if config is None:
        try:
            config = load_config(Path(config_path) if config_path else None, start=program)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    origins: dict[str, str] = {}
    values: dict[str, Any] = {}

    def fail(label: str, message: str) -> UsageError:
        return UsageError(describe(label, message))

    for name, f in setting_fields(RunSettings):
        meta = f.metadata
        kind = meta["kind"]
        sources: list[tuple[str, Any, bool]] = []  # (label, value, is text), lowest first
        if meta["toml"]:
            section, _, key = meta["toml"].partition(".")
            table = config.section(section)
            if not key:
                if table:
                    where = f" of `{config.path}`" if config.path else ""
                    sources.append((f"[{section}]{where}", table, False))
            elif key in table:
                value = table[key]
                if kind == "path" and isinstance(value, str) and config.path is not None:
                    value = str(config.path.parent / value)  # relative to cxpar.toml
                sources.append((_file_label(key, section, config.path), value, False))
        if meta["env"] and env.get(meta["env"]):
            sources.append((meta["env"], env[meta["env"]], True))
        cli = params.get(_dest(name))
        if cli is not None:
            sources.append((meta["cli"], cli, isinstance(cli, str)))
        extras = {key: params.get(_dest(f"{name}.{key}")) for key in meta["extra_cli"].values()}
        extras = {k: v for k, v in extras.items() if v is not None}
        if extras:
            label = " / ".join(flag.split("/")[0] for flag, key in meta["extra_cli"].items()
                               if key in extras)
            sources.append((label, extras, False))
        if not sources:
            continue
        parsed: list[tuple[str, Any]] = []
        for label, value, is_text in sources:
            try:
                parsed.append((label, _parser(name, kind)(value) if is_text else value))
            except ValueError as exc:
                raise fail(label, str(exc)) from None
        if kind == "named":  # [endpoints.NAME]: one table per name (cxpar.toml only)
            label, table = parsed[-1]
            named: dict[str, Any] = {}
            for key, sub in table.items():
                try:
                    named[str(key)] = meta["item"].from_mapping(sub, str(key))
                except ValueError as exc:
                    raise fail(label, str(exc)) from None
            values[name] = named
            origins[name] = label
        elif kind == "table":
            base = f.default_factory()
            for label, value in parsed:
                if not isinstance(value, Mapping):
                    raise fail(label, "must be a table")
                try:
                    base = type(base).from_mapping(value, base)
                except ValueError as exc:
                    raise fail(label, str(exc)) from None
            values[name] = base
            origins[name] = parsed[-1][0]
        elif kind in ("latency", "capacity", "map", "pricing"):
            merged: dict[str, Any] = {}
            for label, value in parsed:
                if not isinstance(value, Mapping):
                    raise fail(label, "must be a table, e.g. { think = 100 }")
                merged.update(value)
            values[name] = merged
            origins[name] = parsed[0][0]  # text sources were checked while parsing
        else:
            origins[name], values[name] = parsed[-1]
    top = {k: v for k, v in values.items() if "." not in k}
    prov = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("provider.")}
    flags = {n: f.metadata["cli"] for n, f in setting_fields(RunSettings) if f.metadata["cli"]}
    try:
        settings = RunSettings(provider=ProviderSettings(**prov), **top)
    except SettingsError as exc:
        label = origins.get(exc.name) or flags.get(exc.name) or exc.name
        raise fail(label, exc.message) from None
    return Resolved(settings, origins, config)


def show(resolved: Resolved) -> str:
    """``cxpar run --show-settings``: every setting, its value and where it came from
    (JSON; header values are hidden, they may carry tokens)."""
    import json
    from dataclasses import asdict, is_dataclass

    from cxpar.runtime.settings import RunSettings, setting_fields

    out: dict[str, Any] = {}
    for name, _f in setting_fields(RunSettings):
        value: Any = resolved.settings
        for part in name.split("."):
            value = getattr(value, part)
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        elif isinstance(value, dict):
            value = {k: asdict(v) if is_dataclass(v) and not isinstance(v, type) else v
                     for k, v in value.items()}
        if name == "provider.headers":
            value = {k: "***" for k in value}
        out[name] = {"value": value, "from": resolved.origins.get(name, "default")}
    return json.dumps({"config": str(resolved.config.path) if resolved.config.path else None,
                       "settings": out}, indent=2) + "\n"
