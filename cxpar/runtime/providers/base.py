"""The provider interface every backend (sim, openai, plug-ins) implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["CallContext", "Provider", "ProviderError"]


class ProviderError(Exception):
    """A provider failure; recorded as ``_errors.result`` with type ``provider``.

    ``retryable`` (default True): whether the call's ``retries`` may try again. Providers
    set it to False for failures a retry cannot fix (HTTP 400/401/404, an unparsable
    answer). ``retry_after`` (seconds, optional): the server's ``Retry-After``; the
    coordinator waits at least this long before the next attempt (rule 17's backoff is
    the minimum). Any other exception a provider raises counts as retryable.
    ``kind``: the ``_errors`` type (SPEC rule 10), ``provider`` unless the failure is one
    of the runtime's own (e.g. ``not_recorded`` from a strict journal replay); a failure
    of another kind is reported with its message as is.
    """

    def __init__(self, message: str, *, retryable: bool = True,
                 retry_after: float | None = None, kind: str = "provider") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind


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
    deadline: float | None = None
    """When this attempt times out, in ``loop.time()`` seconds (None: no deadline known).
    The coordinator cancels the call at that instant anyway; a network provider can use
    it to size its own per-request timeout."""


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


def condition_of(request: Mapping[str, Any]) -> bool | None:
    """A boolean ``condition`` prop (top level or in ``data``) that decides an ``is``/``not``
    call outright (rule 21); None when there is none."""
    cond = request.get("condition")
    if type(cond) is bool:
        return cond
    data = request.get("data")
    if type(data) is dict and type(data.get("condition")) is bool:
        return bool(data["condition"])
    return None
