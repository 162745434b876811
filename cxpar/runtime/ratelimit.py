"""Requests- and tokens-per-minute limits per endpoint (docs/runtime.md "Rate limits").

One :class:`RateLimiter` per endpoint, on the loop's clock (so the virtual clock makes
every wait deterministic):

- ``rpm``: at most that many requests start in any 60 s window;
- ``tpm``: the tokens of the requests started in any 60 s window stay within it. A
  request counts its estimate (:func:`estimate_tokens`: characters / 4 of what is sent
  plus ``max_tokens``) when it starts, corrected to the reported usage when it ends. A
  single request larger than ``tpm`` starts when the window is empty (it could never
  start otherwise);
- :meth:`RateLimiter.pause`: the endpoint said to wait (``Retry-After``,
  ``x-ratelimit-remaining-*: 0``): no request to it starts before then.

A request first waits until it would fit (:meth:`RateLimiter.ready`), then for its
concurrency slots, and is counted (:meth:`RateLimiter.commit`) only at the instant it is
sent; if others took the room meanwhile it gives its slots back and waits again. So the
limits hold for the moments requests are actually sent. A request sent again inside a
call (a provider's transport retry, which holds its slots already) waits and is counted
in one step (:meth:`RateLimiter.admit`): the server counts it like any other.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from typing import Any

from .values import to_json

__all__ = ["WINDOW_S", "RateLimiter", "estimate_tokens"]

#: The window of ``rpm`` and ``tpm`` (s).
WINDOW_S = 60.0
#: The shortest sleep of :meth:`RateLimiter.ready`: a wait left over from float rounding
#: (``t + 60 - now`` a few ulps above 0) must still move the clock (the virtual clock
#: rounds deadlines to 1 ns, so a smaller sleep would wake at the same instant forever).
_MIN_SLEEP_S = 1e-6


def estimate_tokens(request: Any, extra: Any = None, max_tokens: int | None = None) -> int:
    """Tokens a request is expected to use: characters / 4 (rounded up) of the request's
    JSON and ``extra`` (schema, tools, tool results), plus ``max_tokens``."""
    chars = len(to_json(request))
    if extra:
        chars += len(to_json(extra))
    return math.ceil(chars / 4) + (max_tokens or 0)


class _Entry:
    __slots__ = ("t", "tokens")

    def __init__(self, t: float, tokens: int) -> None:
        self.t = t
        self.tokens = tokens


class RateLimiter:
    """The ``rpm``/``tpm`` windows and pauses of one endpoint (see the module doc)."""

    __slots__ = ("rpm", "tpm", "window_s", "_requests", "_tokens", "_used", "paused_until",
                 "waited_s")

    def __init__(self, rpm: float | None = None, tpm: float | None = None,
                 window_s: float = WINDOW_S) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window_s = window_s
        self._requests: deque[float] = deque()
        self._tokens: deque[_Entry] = deque()
        self._used = 0
        self.paused_until = -math.inf
        #: Seconds requests waited here so far (all callers).
        self.waited_s = 0.0

    @property
    def active(self) -> bool:
        """Whether this endpoint can make a request wait (limits set or paused)."""
        return self.rpm is not None or self.tpm is not None or self.paused_until > -math.inf

    def _prune(self, now: float) -> None:
        # a request sent at t is in the window while t + window > now (computed the same
        # way as the waits below, so the two never disagree by a rounding error)
        w = self.window_s
        reqs = self._requests
        while reqs and reqs[0] + w <= now:
            reqs.popleft()
        toks = self._tokens
        while toks and toks[0].t + w <= now:
            self._used -= toks.popleft().tokens

    def delay(self, now: float, tokens: int) -> float:
        """Seconds from ``now`` until a request of ``tokens`` would fit (0: now)."""
        self._prune(now)
        wait = max(0.0, self.paused_until - now)
        if self.rpm is not None and len(self._requests) + 1 > self.rpm:
            # the oldest requests must leave the window first
            k = len(self._requests) + 1 - int(self.rpm)
            wait = max(wait, self._requests[k - 1] + self.window_s - now)
        if self.tpm is not None and self._tokens and self._used + tokens > self.tpm:
            need = self._used + tokens - self.tpm
            for e in self._tokens:
                need -= e.tokens
                if need <= 0 or e is self._tokens[-1]:
                    wait = max(wait, e.t + self.window_s - now)
                    break
        return wait

    async def ready(self, tokens: int) -> float:
        """Wait until a request of ``tokens`` would fit; the seconds waited."""
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while True:
            wait = self.delay(loop.time(), tokens)
            if wait <= 0:
                break
            await asyncio.sleep(max(wait, _MIN_SLEEP_S))
        waited = loop.time() - t0
        self.waited_s += waited
        return waited

    def commit(self, now: float, tokens: int) -> _Entry | None:
        """Count a request sent at ``now``; None if it no longer fits (wait again)."""
        if self.delay(now, tokens) > 0:
            return None
        if self.rpm is not None:
            self._requests.append(now)
        entry = _Entry(now, tokens)
        if self.tpm is not None:
            self._tokens.append(entry)
            self._used += tokens
        return entry

    async def admit(self, tokens: int) -> tuple[_Entry, float]:
        """Wait until a request of ``tokens`` fits and count it as sent then (for a
        request that already holds its slots, e.g. a provider's transport retry); its
        entry (for :meth:`correct`) and the seconds waited."""
        loop = asyncio.get_running_loop()
        t0 = now = loop.time()
        while (entry := self.commit(now, tokens)) is None:
            await asyncio.sleep(max(self.delay(now, tokens), _MIN_SLEEP_S))
            now = loop.time()
        waited = now - t0
        self.waited_s += waited
        return entry, waited

    def correct(self, entry: _Entry | None, tokens: int) -> None:
        """The request of ``entry`` really used ``tokens`` (reported usage)."""
        if entry is None or self.tpm is None or tokens == entry.tokens:
            return
        if any(e is entry for e in self._tokens):
            self._used += tokens - entry.tokens
        entry.tokens = tokens

    def pause(self, now: float, seconds: float) -> None:
        """No request starts before ``now + seconds`` (the endpoint asked to wait)."""
        if seconds > 0 and math.isfinite(seconds):
            self.paused_until = max(self.paused_until, now + seconds)
