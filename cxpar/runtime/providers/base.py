"""The provider interface every backend (sim, openai, plug-ins) implements."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..values import to_json
from .turns import ToolCall, ToolRequest, ToolRound, ToolSpec

__all__ = ["CallContext", "Provider", "ProviderError", "ToolCall", "ToolRequest", "ToolRound",
           "ToolSpec", "Usage", "estimate_tokens", "request_text"]


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


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one provider request consumed: what the endpoint reported (the OpenAI
    ``usage`` object), or an estimate (``estimated=True``: the sim's characters / 4).

    ``model``: the model that answered (the reply's ``model``), None if unknown; prices
    are looked up by it (``[pricing.MODEL]``), else by the run's model.
    """

    input_tokens: int
    output_tokens: int
    model: str | None = None
    estimated: bool = False

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens"):
            v = getattr(self, name)
            if type(v) is not int or v < 0:
                raise ValueError(f"Usage.{name} must be an int >= 0, got {v!r}")


def estimate_tokens(text: str) -> int:
    """The deterministic token estimate of ``text``: characters / 4, rounded up."""
    return math.ceil(len(text) / 4)


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
    usage: list[Usage] = field(default_factory=list)
    """Tokens reported for this attempt (:meth:`report_usage`), one entry per request
    that returned usage (a provider's own transport retries included)."""
    marks: list[tuple[float, str, Usage | None]] = field(default_factory=list)
    """``(loop time, "usage" | "retry: reason", usage)`` in order: where each usage report
    and each transport retry happened inside the attempt (for traces and OTel spans)."""

    endpoint: str | None = None
    """The endpoint the call was routed to (``sim``, ``default``, an ``[endpoints]`` name)."""
    model: str | None = None
    """The model to ask (the call's ``model:``, ``[routing]``, else the endpoint's); None:
    the provider's own default."""
    chosen_model: str | None = None
    """The model when the call chose it (``model:`` or ``[routing]``), else None."""
    schema: dict[str, Any] | None = None
    """``schema:``: the JSON Schema the answer must satisfy (the runtime validates it)."""
    tools: list[ToolSpec] | None = None
    """``tools:``: the CX handlers the model may call; answer a :class:`ToolRequest` to
    call some (the runtime runs them and calls again with :attr:`history`)."""
    history: list[ToolRound] = field(default_factory=list)
    """The tool rounds so far: each request the model made and the tools' results."""
    on_chunk: Callable[[str], None] | None = None
    """``stream:``: call it with each piece of the answer's text as it arrives."""
    pause: Callable[[float], None] | None = None
    """Tell the runtime the endpoint asked for a pause of that many seconds (rate-limit
    headers): every call to the endpoint waits, not only this one."""
    resend: Callable[[], Awaitable[None]] | None = None
    """Await it before sending a request again inside this attempt (a transport retry):
    the request waits for its endpoint's ``rpm``/``tpm`` room and pauses and is counted
    there, like every request the server sees. The wait is queue time: the runtime moves
    :attr:`deadline` (and the attempt's timeout) later by it."""

    def report_usage(self, usage: Usage) -> None:
        """Record the tokens of one request (call it once per request that returned
        usage, also when the call then fails: the tokens were spent)."""
        self.usage.append(usage)
        self.marks.append((self._now(), "usage", usage))

    def report_retry(self, reason: str) -> None:
        """Record that the provider is sending the request again inside this attempt (a
        transport-level retry); counted in ``--stats`` retries, one span per request."""
        self.marks.append((self._now(), "retry: " + reason, None))

    def _now(self) -> float:
        loop = getattr(self.runtime, "loop", None)
        return loop.time() if loop is not None else 0.0


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


def request_text(request: Mapping[str, Any]) -> str:
    """The user message a chat model gets for ``request``: the ``prompt`` prop (a string
    as is, anything else as one-line JSON) plus the other props as a JSON context block,
    or the whole request as JSON when there is no ``prompt``."""
    prompt = request.get("prompt")
    if prompt is None:
        return to_json(dict(request))
    text = prompt if type(prompt) is str else to_json(prompt)
    rest = {k: v for k, v in request.items() if k != "prompt"}
    if rest:
        text += "\n\nContext (JSON): " + to_json(rest)
    return text


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
