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
import random
from collections.abc import Mapping
from typing import Any

from cxpar.lang import DEFAULT_LATENCY_MS

from ..values import to_json
from .base import CallContext, ProviderError, Usage, condition_of, estimate_tokens, request_text

__all__ = ["SimProvider", "decide", "SIM_MODEL", "sim_usage"]

_TEXT_KEYS = ("prompt", "text", "input", "query", "command", "message")
PLUGIN_LATENCY_MS = 100.0
#: The model name the sim reports usage under (``[pricing.sim]``).
SIM_MODEL = "sim"


def sim_usage(service: str, request: Mapping[str, Any], answer: Any) -> Usage | None:
    """The sim's token estimate for answering ``request`` with ``answer`` (None: no
    request would be sent)."""
    if service == "learn" or (service in ("is", "not") and condition_of(request) is not None):
        return None
    if type(answer) is bool:
        out = "yes" if answer else "no"
    else:
        out = answer if type(answer) is str else to_json(answer)
    return Usage(estimate_tokens(request_text(request)), estimate_tokens(out), SIM_MODEL,
                 estimated=True)


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
        if lat > 0:
            await asyncio.sleep(lat / 1000)
        if fail:
            raise ProviderError(f"simulated {service} failure")
        answer = self.answer(service, request, context)
        usage = sim_usage(service, request, answer)
        if usage is not None:
            context.report_usage(usage)
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
        for k in _TEXT_KEYS:
            v = request.get(k)
            if type(v) is str:
                return f"[{service}] {v}"
        return f"[{service}] {to_json(request)}"
