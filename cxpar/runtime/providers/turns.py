"""The data of tool-calling turns, shared by the runtime and providers.

A provider that supports tools answers a :class:`ToolRequest` when the model wants to
call some; the runtime runs them (each a CX handler, like a branch) and calls the
provider again with ``context.history``: one :class:`ToolRound` per earlier request,
with each call's result as the text the model gets back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ToolCall", "ToolRequest", "ToolRound", "ToolSpec"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool offered to the model: a CX event and how the model sees it."""

    name: str
    """The function name the model uses (the event name made safe: ``weather_lookup``)."""
    event: str
    """The CX event its handler subscribes to (``weather.lookup``)."""
    description: str
    parameters: dict[str, Any]
    """The JSON Schema of the arguments (``{"type": "object"}`` when free-form)."""
    free_form: bool = True
    """No ``parameters`` were given: any JSON object is accepted."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model asked for: ``arguments`` is the JSON text it sent."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolRequest:
    """A model answer that calls tools (all calls of one round run in parallel).

    ``text``: any text the model sent along; ``raw``: the provider's own form of the
    assistant turn (JSON data), replayed in the next request's history.
    """

    calls: tuple[ToolCall, ...]
    text: str | None = None
    raw: Any = None

    def to_data(self) -> dict[str, Any]:
        """As JSON data (for the journal)."""
        return {"tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                               for c in self.calls], "text": self.text, "raw": self.raw}

    @classmethod
    def from_data(cls, data: Any) -> ToolRequest | None:
        """The request :meth:`to_data` wrote, or None if ``data`` is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("tool_calls"), list) \
                or set(data) != {"tool_calls", "text", "raw"}:
            return None
        try:
            calls = tuple(ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"]))
                          for c in data["tool_calls"])
        except (KeyError, TypeError):
            return None
        return cls(calls, data["text"], data["raw"])


@dataclass(slots=True)
class ToolRound:
    """One round: the model's request and, per call (same order), the result text."""

    request: ToolRequest
    results: list[str] = field(default_factory=list)
