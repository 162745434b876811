"""Failures recorded only in ``_errors`` (SPEC §10 rule 6).

A call whose provider or branch failed — timeout, no handler, provider error, depth,
cancelled, an open circuit, … — leaves the exit code at 0: the program saw the failure
in ``_errors`` and may have handled it. So that such failures are never silent (an
unreachable model would otherwise print ``null`` and exit 0), every run counts them per
kind and, at its end, prints a summary on stderr with the first message of each kind;
``--strict`` makes any of them exit 3 (for CI). Branch failures caused by a runtime error
are not counted here: they are reported (and exit 3) when they happen; neither are calls
a budget refused (`budget_exceeded`: the budget report says how many).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FailureLog"]

#: Kinds reported another way, never summarised: a runtime error (reported where it
#: happened, exit 3) and a budget stop (its own report at the end, exit 3).
_REPORTED = frozenset({"error", "budget_exceeded"})


@dataclass
class _Kind:
    count: int = 0
    first: str = ""
    where: str = ""


@dataclass
class FailureLog:
    """Failures per ``_errors`` type, in the order kinds first appeared."""

    kinds: dict[str, _Kind] = field(default_factory=dict)

    def add(self, errors: Mapping[str, Any], service: str,
            where: tuple[str, int, int, int, int] | None, context: str = "") -> None:
        """Count one call's ``_errors`` (``service`` at ``where`` made it; ``context``,
        e.g. `` (record 4)``, follows the location)."""
        for key, err in errors.items():
            if not isinstance(err, Mapping):
                continue
            kind = str(err.get("type", "error"))
            if kind in _REPORTED:
                continue
            entry = self.kinds.get(kind)
            if entry is None:
                entry = self.kinds[kind] = _Kind()
                at = f" at {where[0]}:{where[1]}:{where[2]}" if where else ""
                what = f"`{service}`" if key == "result" else f"`{key}` of `{service}`"
                entry.first = str(err.get("message", ""))
                entry.where = f"{what}{at}{context}"
            entry.count += 1

    @property
    def total(self) -> int:
        return sum(k.count for k in self.kinds.values())

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def render(self, strict: bool) -> str:
        """The end-of-run summary (a warning; an error under ``--strict``)."""
        from .errors import render_error

        n = self.total
        counts = ", ".join(f"{k.count} {kind}" for kind, k in self.kinds.items())
        head = (f"{n} call failure{'s' if n != 1 else ''} recorded only in `_errors` "
                f"({counts})")
        notes = [f"first {kind}: {k.where}: {k.first}" for kind, k in self.kinds.items()]
        if not strict:
            notes.append("the exit code stays 0; `--strict` makes these failures exit 3")
        return render_error(head, None, {}, level="error" if strict else "warning",
                            notes=notes)
