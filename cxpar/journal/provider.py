"""``JournaledProvider``: the only part of the journal the runtime sees.

It wraps the run's provider. Each call is looked up in the journal by its key
(:mod:`cxpar.journal.keys`); a recorded answer is served without contacting the
provider, anything else goes to the wrapped provider and its answer is committed to the
journal before the program sees it. Under strict replay (``--replay``) a call that is not
in the journal fails with ``_errors`` type ``not_recorded`` instead.

A served answer takes its recorded duration on the virtual clock (so a replay on the
virtual clock times out, races and prints ``now()`` exactly as the recording did) and
returns at once on the real clock.

``learn`` is not journaled: both built-in providers answer it locally from the calling
entity's memory (no model call), and serving it from the journal would skip that
memory update.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from cxpar.runtime.clock import VirtualEventLoop
from cxpar.runtime.providers.base import CallContext, Provider, ProviderError, ToolRequest

from .keys import SINGLE_STREAM, Occurrences, canonical, request_hash, storable
from .schema import JournalError
from .store import CallRecord, Journal

__all__ = ["JournaledProvider", "NOT_JOURNALED", "describe_provider"]

#: Services answered by the wrapped provider and never journaled.
NOT_JOURNALED = frozenset({"learn"})
#: Characters of the request quoted in a ``not_recorded`` failure (SPEC rule 10).
REQUEST_EXCERPT = 80


def describe_provider(provider: Any) -> tuple[str, str | None, str | None]:
    """``(name, endpoint, model)`` of a provider, for the journal (never a key)."""
    from cxpar.runtime.endpoints import endpoints_of
    from cxpar.runtime.providers.sim import SimProvider

    eps = endpoints_of(provider)
    if eps is not None:  # the run's endpoints: described by the default one
        provider = eps.default_provider
    if isinstance(provider, SimProvider):
        return "sim", None, None
    shown = getattr(provider, "shown_url", None)  # the URL without user info
    endpoint = shown.removesuffix("/chat/completions") if isinstance(shown, str) else None
    model = getattr(provider, "model", None)
    name = "openai" if type(provider).__name__ == "OpenAIProvider" \
        else f"{type(provider).__module__}:{type(provider).__qualname__}"
    return name, endpoint, model if isinstance(model, str) else None


class JournaledProvider:
    """Serves recorded calls from ``journal`` and records what ``inner`` answers.

    ``strict``: never call ``inner`` (except for :data:`NOT_JOURNALED` services); a call
    that is not recorded fails with type ``not_recorded``. Attribute reads the runtime
    makes (``base_url``, ``capacity`` …) go to ``inner``.
    """

    def __init__(self, inner: Provider, journal: Journal, *, strict: bool = False) -> None:
        self.inner = inner
        self.journal = journal
        self.strict = strict
        self.occurrences = Occurrences()
        self.served = 0
        self.recorded = 0
        self.not_recorded = 0
        self._warned: set[str] = set()
        _name, self._endpoint, self._model = describe_provider(inner)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        mode = "replay" if self.strict else "journal"
        return f"JournaledProvider({self.inner!r}, {mode}={self.journal.path!r})"

    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        if service in NOT_JOURNALED:
            return await self.inner.call(service, request, context)
        stream = getattr(context.runtime, "index", SINGLE_STREAM)
        if type(stream) is not int:
            stream = SINGLE_STREAM
        text = storable(canonical(request, context))
        digest = request_hash(service, text)
        occ = self.occurrences.take(stream, service, digest)
        kept = False
        try:
            hit = self.journal.lookup(stream, service, digest, occ, text)
            if hit is not None:
                if hit.duration_ms > 0 and isinstance(asyncio.get_running_loop(),
                                                      VirtualEventLoop):
                    await asyncio.sleep(hit.duration_ms / 1000)
                kept = True
                self.served += 1
                return _decode(hit.answer)
            if self.strict:
                self.not_recorded += 1
                shown = text if len(text) <= REQUEST_EXCERPT else text[:REQUEST_EXCERPT] + "…"
                raise ProviderError(
                    f"`{service}` is not recorded in journal `{self.journal.path}` "
                    f"(request {shown})", retryable=False, kind="not_recorded")
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            started = time.time()
            value = await self.inner.call(service, request, context)
            duration_ms = (loop.time() - t0) * 1000
            answer = _encode(value)
            if answer is None:
                self._warn_once(context, f"`{service}` answered a value that is not JSON "
                                         "data; such answers are not journaled")
            else:
                prompt, completion, answered_by = reported_usage(context)
                rec = CallRecord(stream, service, digest, occ, text, answer, context.attempt,
                                 started, duration_ms, self._endpoint,
                                 answered_by or getattr(context, "model", None) or self._model,
                                 prompt, completion)
                try:
                    if isinstance(loop, VirtualEventLoop) and \
                            not getattr(self.journal, "remote", False):
                        self.journal.record(rec)
                    else:
                        await self.journal.record_soon(rec)
                except JournalError as exc:
                    raise ProviderError(str(exc), retryable=False) from None
                self.recorded += 1
            kept = True
            return value
        finally:
            if not kept:
                self.occurrences.give_back(stream, service, digest, occ)

    def _warn_once(self, context: CallContext, message: str) -> None:
        if message in self._warned:
            return
        self._warned.add(message)
        from cxpar.runtime.errors import render_error

        context.runtime.stderr.write(render_error(message, None, {}, level="warning") + "\n")

    def stream_done(self, stream: int, failed: bool) -> None:
        """A batch stream finished and its lines are written."""
        self.occurrences.forget_stream(stream)
        self.journal.stream_done(stream, failed)


def reported_usage(context: CallContext) -> tuple[int | None, int | None, str | None]:
    """``(prompt, completion, model)``: the tokens the provider reported for this attempt
    (``context.usage``; estimates such as the sim's are not reported tokens) and the
    model that answered when the reply named it; ``(None, None, None)`` when it reported
    none."""
    usage = [u for u in getattr(context, "usage", None) or ()
             if not getattr(u, "estimated", False)]
    if not usage:
        return None, None, None
    models = [m for u in usage if isinstance(m := getattr(u, "model", None), str) and m]
    return (sum(int(getattr(u, "input_tokens", 0)) for u in usage),
            sum(int(getattr(u, "output_tokens", 0)) for u in usage),
            models[-1] if models else None)


#: How a model answer that calls tools is stored (a JSON object with this one key).
TOOL_REQUEST_KEY = "__cx_tool_request__"


def _decode(answer: Any) -> Any:
    if type(answer) is dict and len(answer) == 1 and TOOL_REQUEST_KEY in answer:
        req = ToolRequest.from_data(answer[TOOL_REQUEST_KEY])
        if req is not None:
            return req
    return answer


def _encode(value: Any) -> str | None:
    """The answer as JSON, or None if it is not JSON data (then it is not journaled)."""
    if type(value) is ToolRequest:
        value = {TOOL_REQUEST_KEY: value.to_data()}
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return None
