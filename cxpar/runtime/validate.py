"""Validation shared by the runtime's setting tables (``[breaker]``, ``[limits]``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from typing import Any, TypeVar

C = TypeVar("C")


def updated(cfg: C, data: Mapping[str, Any], section: str,
            coerce: Callable[[str, Any], Any]) -> C:
    """``cfg`` (a dataclass) with ``data``'s keys coerced; unknown keys → ValueError."""
    known = {f.name for f in fields(cfg)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ValueError(f"unknown {section} setting `{key}` "
                             f"(known: {', '.join(sorted(known))})")
        changes[key] = coerce(key, value)
    return replace(cfg, **changes)  # type: ignore[type-var]


def switch(value: Any) -> bool | None:
    """``true/on/yes/1`` → True, ``false/off/no/0`` → False (or a bool), else None."""
    if isinstance(value, bool):
        return value
    low = str(value).lower()
    if low in ("true", "on", "yes", "1"):
        return True
    if low in ("false", "off", "no", "0"):
        return False
    return None


def non_negative(section: str, key: str, value: Any) -> float:
    """A finite number >= 0 (not a bool, NaN or infinity), else ValueError naming
    ``section`` and ``key``."""
    try:
        num = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{section} `{key}` must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(num) or num < 0:
        raise ValueError(f"{section} `{key}` must be a finite number >= 0, got {value!r}")
    return num
