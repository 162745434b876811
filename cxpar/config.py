"""Project configuration: ``cxpar.toml``.

**Which file.** ``--config PATH`` (on ``run``, ``repl``, ``check``, ``graph``,
``compile``) or ``CXPAR_CONFIG=PATH`` names one explicitly. Otherwise cxpar looks for
``cxpar.toml`` in the directory of the program (the current directory for ``repl``)
and then upwards, stopping at the first directory that holds ``.git`` (the project
root) or is the home directory; when neither is above the program, only the program's
own directory is searched. So a file planted in a shared parent such as ``/tmp`` is
never picked up. The first file found is used.

**Precedence**, highest first: command-line options, environment variables
(``CXPAR_*``), the config file, defaults (:mod:`cxpar.settings`).

Sections (unknown sections and keys are an error, so typos do not pass silently). The
keys of ``[run]``, ``[sim]``, ``[provider]``, ``[breaker]`` and ``[limits]`` are derived
from :class:`cxpar.runtime.settings.RunSettings`, so every accepted key takes effect:

```toml
[run]         # clock, seed, timeout, max_concurrency, backend, streams, strict
[sim]         # latency = { think = 800 }, fail_rate, timeout_rate, capacity = { think = 50 }
[provider]    # name = "sim" | "openai" | "module:attr", base_url, model, timeout, ...
[breaker]     # circuit breaker settings
[limits]      # adaptive concurrency settings
[endpoints.NAME]  # base_url, model, api_key_env, rpm, tpm, max_concurrency
[routing.SERVICE] # endpoint, model
[services]    # plug-in service names: summarize = "summarizing"
```

Secrets never live here: the API key is read only from ``CXPAR_API_KEY``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "cxpar.toml"

#: Sections whose keys are free-form (``None``); the others come from RunSettings.
FREE_SECTIONS: dict[str, set[str] | None] = {"services": None}


def schema() -> dict[str, set[str] | None]:
    """Known sections and their keys (``None``: any key), derived from RunSettings."""
    from dataclasses import fields

    from cxpar.runtime.settings import RunSettings, setting_fields

    out: dict[str, set[str] | None] = {}
    for _name, f in setting_fields(RunSettings):
        toml = f.metadata.get("toml")
        if not toml:
            continue
        section, _, key = toml.partition(".")
        if f.metadata.get("kind") == "named":  # [endpoints.NAME]: any name
            out[section] = None
            continue
        keys = out.setdefault(section, set())
        assert keys is not None
        if key:
            keys.add(key)
        elif f.metadata.get("kind") == "pricing":  # [pricing.MODEL]: any model name
            out[section] = None
        else:  # a whole table: the keys of its dataclass
            keys.update(sub.name for sub in fields(f.default_factory()))
    out.update(FREE_SECTIONS)
    return out


class ConfigError(Exception):
    """A config file that cannot be read or has unknown keys (a usage error)."""


@dataclass
class Config:
    """A loaded configuration (empty when no file was found)."""

    path: Path | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        """The table ``[name]`` (empty if absent)."""
        value = self.data.get(name, {})
        return dict(value) if isinstance(value, dict) else {}

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.section(section).get(key, default)


def find_config(start: Path | None = None, env: Mapping[str, str] | None = None,
                ) -> Path | None:
    """The ``cxpar.toml`` for a program at (or in) ``start`` (default: the current
    directory): ``CXPAR_CONFIG``, else the nearest one up to the project root (a
    directory with ``.git``) or the home directory, else only ``start``'s own directory."""
    env = os.environ if env is None else env
    if env.get("CXPAR_CONFIG"):
        return Path(env["CXPAR_CONFIG"])
    for d in search_dirs(start):
        candidate = d / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def search_dirs(start: Path | None = None) -> list[Path]:
    """The directories searched for ``cxpar.toml``, nearest first (see the docstring)."""
    here = (start or Path.cwd()).resolve()
    if not here.is_dir():
        here = here.parent
    try:
        home: Path | None = Path.home().resolve()
    except (RuntimeError, KeyError):
        home = None
    chain = [here, *here.parents]
    for i, d in enumerate(chain):
        if d == home or (d / ".git").exists():
            return chain[:i + 1]
    return [here]


def load_config(path: Path | None = None, *, start: Path | None = None) -> Config:
    """Load ``path`` (or the nearest ``cxpar.toml``); validate sections and keys."""
    target = path if path is not None else find_config(start)
    if target is None:
        return Config()
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: `{target}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file `{target}`: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in `{target}`: {exc}") from None
    known = schema()
    for section, value in data.items():
        if section not in known:
            raise ConfigError(f"unknown section `[{section}]` in `{target}` "
                              f"(known: {', '.join(sorted(known))})")
        if not isinstance(value, dict):
            raise ConfigError(f"`{section}` in `{target}` must be a table")
        allowed = known[section]
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise ConfigError(f"unknown key `{key}` in `[{section}]` of `{target}` "
                                      f"(known: {', '.join(sorted(allowed))})")
    return Config(target, data)
