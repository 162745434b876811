"""What one run returns: :class:`RunResult` (outputs, printed lines, errors, stats)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RunResult"]


@dataclass(frozen=True)
class RunResult:
    """The result of one isolated run (:meth:`cxpar.Program.run`).

    ``outputs`` holds every ``emit output.record`` payload in emit order (JSON values:
    dicts, lists, strings, floats, booleans, None); ``printed`` the lines the program
    printed; ``errors`` one dict per runtime error (``type`` — ``runtime``, ``timeout``,
    ``stalled``, ``internal`` — and ``message``, plus ``file``/``line``/``col`` when the
    error has a CX source location); ``stats`` the run's statistics (the ``--stats``
    rows); ``duration_ms`` the run's time on its clock.
    """

    id: str
    outputs: list[Any] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0

    @property
    def output(self) -> Any:
        """The last ``output.record`` payload (None if the run emitted none)."""
        return self.outputs[-1] if self.outputs else None

    @property
    def error(self) -> dict[str, Any] | None:
        """The first error (with ``count`` when there were several), or None."""
        if not self.errors:
            return None
        first = dict(self.errors[0])
        if len(self.errors) > 1:
            first["count"] = len(self.errors)
        return first

    @property
    def ok(self) -> bool:
        """True when the run had no runtime error and did not time out."""
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``cxpar serve`` answers with (``POST /v1/runs``)."""
        return {"id": self.id, "output": self.output, "outputs": self.outputs,
                "error": self.error, "errors": self.errors, "printed": self.printed,
                "duration_ms": self.duration_ms, "stats": self.stats}
