"""The provider interface every backend (sim, openai, plug-ins) implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["CallContext", "Provider", "ProviderError"]


class ProviderError(Exception):
    """A provider failure; recorded as ``_errors.result`` with type ``provider``."""


@dataclass(slots=True)
class CallContext:
    """What a provider knows about one call attempt besides the request."""

    service: str
    """The service name (``think``, ``is``, a plug-in name …)."""
    stem: str
    """The event stem (``thinking`` …)."""
    caller: Any
    """The calling entity :class:`~cxpar.runtime.values.Instance`, or None at top level."""
    attempt: int
    """1 for the first attempt, 2 for the first retry, …"""
    runtime: Any
    """The :class:`~cxpar.runtime.scheduler.Runtime` (clock, seed, memory)."""


@runtime_checkable
class Provider(Protocol):
    """``async def call(service, request, context) -> value``.

    Raise :class:`ProviderError` (or any exception) to fail the call. For ``is``/``not``
    return the yes/no decision for the request itself: the runtime delivers ``is`` items
    on yes and ``not`` items on no, so ``is R`` and ``not R`` are complementary.
    Cancellation (timeouts) arrives as ``asyncio.CancelledError`` and must propagate.
    """

    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        ...
