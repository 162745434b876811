"""The default simulated provider (SPEC §6.3, §10 rules 20–21).

Deterministic for a seed. Each call sleeps the service's fixed latency
(:data:`cxpar.lang.DEFAULT_LATENCY_MS`, 100 ms for plug-in services; overridable), then:

- ``fail_rate``: the call fails with ``ProviderError("simulated <svc> failure")``;
- ``timeout_rate``: the call never answers (only the call's ``timeout`` ends it);
- ``capacity`` (``{service: calls}``): a server that handles that many calls of the
  service at once at full speed. With ``n`` calls in flight (this one included) and
  ``n > capacity``, the latency becomes ``latency·n/capacity`` and the call is rejected
  with probability ``min(0.9, n/capacity - 1)`` (``ProviderError("… overloaded (HTTP
  429)")``, retryable, after the base latency) — so throughput peaks at the capacity;
- otherwise it answers from the request:

  * ``is``/``not``: a boolean ``condition`` prop (top level, else inside ``data``)
    decides; otherwise a stable hash of the request's JSON (same answer for ``is R`` and
    ``not R``, independent of the seed);
  * ``learn``: appends the request to the calling entity's memory (a program-wide
    memory at top level) and answers the memory's new size (a number);
  * every other service: ``"[<svc>] <text>"`` where text is the first string among the
    ``prompt``, ``text``, ``input``, ``query``, ``command``, ``message`` props, else the
    request as one-line JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import Mapping
from typing import Any

from cxpar.lang import DEFAULT_LATENCY_MS

from ..values import to_json
from .base import (
    CallContext,
    ProviderError,
    ToolCall,
    ToolRequest,
    Usage,
    condition_of,
    estimate_tokens,
    request_text,
)

__all__ = ["SimProvider", "decide", "SIM_MODEL", "sim_usage"]

_TEXT_KEYS = ("prompt", "text", "input", "query", "command", "message")
#: Latency of plug-in services the sim answers (ms).
PLUGIN_LATENCY_MS = 100.0
#: Services whose answer is not text: never streamed.
_NOT_STREAMED = frozenset({"is", "not", "learn"})
#: Words per streamed chunk, and when the first chunk arrives (fraction of the latency).
CHUNK_WORDS = 2
FIRST_CHUNK = 0.25


def stream_chunks(text: str) -> list[str]:
    """The sim's chunks of ``text``: :data:`CHUNK_WORDS` words each (with the spaces after
    them), so that joining them gives ``text`` back."""
    import re

    lead = re.match(r"\s*", text)
    head = lead.group(0) if lead else ""
    words = re.findall(r"\S+\s*", text[len(head):])
    chunks = ["".join(words[i:i + CHUNK_WORDS]) for i in range(0, len(words), CHUNK_WORDS)]
    if not chunks:
        return [text] if text else []
    chunks[0] = head + chunks[0]
    return chunks


#: The model name the sim reports usage under (``[pricing.sim]``).
SIM_MODEL = "sim"


def sim_usage(service: str, request: Mapping[str, Any], answer: Any) -> Usage | None:
    """The sim's token estimate for answering ``request`` with ``answer`` (None: no
    request would be sent)."""
    if service == "learn" or (service in ("is", "not") and condition_of(request) is not None):
        return None
    if type(answer) is bool:
        out = "yes" if answer else "no"
    elif type(answer) is ToolRequest:  # a tool round: the calls are the output
        out = to_json(answer.to_data()["tool_calls"])
    else:
        out = answer if type(answer) is str else to_json(answer)
    return Usage(estimate_tokens(request_text(request)), estimate_tokens(out), SIM_MODEL,
                 estimated=True)


def answer_text(request: Mapping[str, Any]) -> str:
    """The text of a request the sim answers from: the first string among the
    ``prompt``, ``text``, ``input``, ``query``, ``command``, ``message`` props, else the
    request as one-line JSON."""
    for k in _TEXT_KEYS:
        v = request.get(k)
        if type(v) is str:
            return v
    return to_json(dict(request))


def decide(request: Mapping[str, Any]) -> bool:
    """The sim's yes/no answer for ``request`` (rule 21)."""
    cond = condition_of(request)
    if cond is not None:
        return cond
    digest = hashlib.sha256(to_json(dict(request)).encode()).digest()
    return bool(digest[0] & 1)


class SimProvider:
    """Simulated AI services with fixed latencies and seeded fault injection."""

    #: The model name usage is reported under (prices: ``[pricing.sim]``).
    model = SIM_MODEL

    def __init__(self, seed: int = 0, *, latency_ms: Mapping[str, float] | None = None,
                 fail_rate: float = 0.0, timeout_rate: float = 0.0,
                 capacity: Mapping[str, float] | None = None) -> None:
        self.seed = seed
        self.latency_ms: dict[str, float] = dict(DEFAULT_LATENCY_MS)
        if latency_ms:
            self.latency_ms.update(latency_ms)
        self.fail_rate = fail_rate
        self.timeout_rate = timeout_rate
        self.memory: list[Any] = []
        self._rng = random.Random(f"sim:{seed}")
        #: Calls each service handles at once at full speed (absent: unlimited).
        self.capacity: dict[str, float] = {k: float(v) for k, v in (capacity or {}).items()}
        self.inflight: dict[str, int] = {}
        self._cap_rng = random.Random(f"capacity:{seed}")

    def latency(self, service: str) -> float:
        """The simulated latency of ``service`` in ms."""
        return float(self.latency_ms.get(service, PLUGIN_LATENCY_MS))

    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        fail = hang = False
        if self.fail_rate or self.timeout_rate:
            r = self._rng.random()
            hang = r < self.timeout_rate
            fail = not hang and r < self.timeout_rate + self.fail_rate
        cap = self.capacity.get(service)
        if cap:
            n = self.inflight.get(service, 0) + 1
            self.inflight[service] = n
            try:
                return await self._call(service, request, context, fail, hang, n / cap)
            finally:
                self.inflight[service] -= 1
        return await self._call(service, request, context, fail, hang, 0.0)

    async def _call(self, service: str, request: dict[str, Any], context: CallContext,
                    fail: bool, hang: bool, load: float) -> Any:
        if hang:
            await asyncio.get_running_loop().create_future()  # never resolves
        lat = self.latency(service)
        if load > 1 and self._cap_rng.random() < min(0.9, load - 1):
            if lat > 0:
                await asyncio.sleep(lat / 1000)
            raise ProviderError(f"simulated {service} overloaded (HTTP 429)")
        if load > 1:
            lat *= load
        if context.on_chunk is not None and not fail and service not in _NOT_STREAMED:
            answer = await self._stream(service, request, context, lat)
        else:
            if lat > 0:
                await asyncio.sleep(lat / 1000)
            if fail:
                raise ProviderError(f"simulated {service} failure")
            answer = self.answer(service, request, context)
        usage = sim_usage(service, request, answer)
        if usage is not None:
            context.report_usage(usage)
        return answer

    async def _stream(self, service: str, request: dict[str, Any], context: CallContext,
                      lat: float) -> Any:
        """``stream:``: the answer's text in chunks of :data:`CHUNK_WORDS` words; the
        first after a quarter of the latency, the others evenly until the latency is
        up (a call takes as long streamed as not)."""
        answer = self.answer(service, request, context)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        if type(answer) is ToolRequest:  # a tool round has no text to stream
            if lat > 0:
                await asyncio.sleep(lat / 1000)
            return answer
        chunks = stream_chunks(answer if type(answer) is str else to_json(answer))
        first = lat * FIRST_CHUNK / 1000
        step = (lat / 1000 - first) / max(1, len(chunks) - 1) if len(chunks) > 1 else 0.0
        assert context.on_chunk is not None
        for i, chunk in enumerate(chunks):
            wait = t0 + first + step * i - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            context.on_chunk(chunk)
        wait = t0 + lat / 1000 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return answer

    def answer(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        """The deterministic answer for a successful call."""
        if service in ("is", "not"):
            return decide(request)
        if service == "learn":
            caller = context.caller
            mem = caller.memory if caller is not None and hasattr(caller, "memory") \
                else self.memory
            mem.append(dict(request))
            return float(len(mem))
        text = answer_text(request)
        if context.tools and not context.history:
            return self.tool_request(text, context)
        results = ""
        if context.history:
            results = " (" + "; ".join(f"{c.name}: {res}" for rnd in context.history
                                       for c, res in zip(rnd.request.calls, rnd.results,
                                                         strict=False)) + ")"
        if context.schema is not None:
            from ..structured import sample

            return sample(context.schema, text, self.seed, results)
        return f"[{service}] {text}{results}"

    def tool_request(self, text: str, context: CallContext) -> ToolRequest:
        """Round 1 of a call with ``tools``: every tool once, arguments derived from the
        prompt (a sample of its ``parameters``, else ``{"query": prompt}``)."""
        from ..structured import json_data, sample

        calls = []
        for i, tool in enumerate(context.tools or ()):
            args = {"query": text} if tool.free_form else sample(tool.parameters, text,
                                                                 self.seed)
            calls.append(ToolCall(f"call_{i + 1}", tool.name, json.dumps(json_data(args))))
        return ToolRequest(tuple(calls))
