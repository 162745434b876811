"""Project configuration: ``cxpar.toml``.

cxpar looks for ``cxpar.toml`` in the directory of the program being run (or the
current directory for commands without a file) and then in each parent directory; the
first one found is used. ``--config PATH`` names one explicitly, and
``CXPAR_CONFIG=PATH`` does the same from the environment. Precedence, highest first:
command-line options, environment variables (``CXPAR_*``), the config file, defaults.

Sections (each owned by the part of cxpar that reads it; unknown keys are an error so
typos do not pass silently):

```toml
[run]         # clock, seed, timeout, max_concurrency
[sim]         # latency = { think = 800 }, fail_rate, timeout_rate, capacity = { think = 50 }
[provider]    # name = "sim" | "openai" | "module:attr", base_url, model, ...
[breaker]     # circuit breaker settings
[limits]      # adaptive concurrency settings
[services]    # plug-in service names: summarize = "summarizing"
```

Secrets never live here: the API key is read only from ``CXPAR_API_KEY``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "cxpar.toml"

#: Known sections and their known keys; ``None`` means any key is allowed.
SCHEMA: dict[str, set[str] | None] = {
    "run": {"clock", "seed", "timeout", "max_concurrency", "backend", "streams"},
    "sim": {"latency", "fail_rate", "timeout_rate", "capacity"},
    "provider": {"name", "base_url", "model", "timeout", "max_connections", "http2",
                 "temperature", "max_tokens", "headers"},
    "breaker": {"enabled", "failure_rate", "window", "min_requests", "cooldown_ms",
                "half_open_probes", "threshold"},
    "limits": {"adaptive", "algorithm", "initial", "min", "max", "aging_ms", "retry_budget",
               "schedule"},
    "services": None,
}


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


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``cxpar.toml`` at or above ``start`` (default: the current directory)."""
    env = os.environ.get("CXPAR_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for d in (here, *here.parents):
        candidate = d / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


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
    for section, value in data.items():
        if section not in SCHEMA:
            raise ConfigError(f"unknown section `[{section}]` in `{target}` "
                              f"(known: {', '.join(sorted(SCHEMA))})")
        if not isinstance(value, dict):
            raise ConfigError(f"`{section}` in `{target}` must be a table")
        allowed = SCHEMA[section]
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise ConfigError(f"unknown key `{key}` in `[{section}]` of `{target}` "
                                      f"(known: {', '.join(sorted(allowed))})")
    return Config(target, data)
