"""Adaptive concurrency limits per provider endpoint (SPEC §6.2, issue 9).

In the style of Netflix's concurrency-limits: the limit is the number of provider calls
allowed in flight; it is re-estimated once per *window* from the calls that started
after the previous estimate (so every estimate sees the effect of the last change):

- ``gradient`` (default; Gradient/Vegas family): ``rtt_min`` is the lowest window
  latency seen (allowed to drift up 1 % per window so a slower endpoint is re-learned).
  ``g = clamp(TOLERANCE·rtt_min / rtt, 0.5, 1)``. While latency is flat (``g == 1``) the
  limit grows — doubling during slow start, then by ``max(1, log10(limit))`` per window;
  when latency rises the limit becomes ``limit·g`` (for a server whose latency grows in
  proportion to its overload this lands on its capacity in one step).
- ``aimd``: +1 per window without errors.

Both: a window with errors the endpoint signals as overload (timeouts, 429, 5xx,
connection errors — the retryable failures) multiplies the limit by the smallest of
``BACKOFF`` (0.9), the success fraction and (gradient) ``g`` — never below 0.5 — and
ends slow start. The limit only grows when the window actually used at least half
of it (an idle limit says nothing about capacity). Waiting calls start in the same
order as under the global limit (``schedule``, priority, aging).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .schedule import POLICIES, CallPath, Limiter
from .validate import non_negative, switch, updated

__all__ = ["AdaptiveLimiter", "LimitsConfig", "ALGORITHMS"]

ALGORITHMS = ("gradient", "aimd")
TOLERANCE = 1.0
BACKOFF = 0.9
MIN_WINDOW = 10  # samples per estimate
DRIFT = 0.01


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """``[limits]`` in ``cxpar.toml`` / ``--limits KEY=VALUE,…``; see docs/runtime.md."""

    #: ``None`` = auto: on when the sim provider has a ``capacity``; True/False forces it.
    adaptive: bool | None = None
    algorithm: str = "gradient"
    initial: int = 10
    min: int = 1
    max: int = 1000
    #: Order of provider calls waiting for a slot: ``program`` or ``fifo`` (rule 19).
    schedule: str = "program"
    #: Aging window (ms): a call waiting since an earlier window ranks one priority level
    #: higher, so no wait is unbounded (0 = no aging). See docs/runtime.md, "Scheduling".
    aging_ms: float = 60_000
    #: Provider retries allowed per first attempt over the last 10 s (plus a reserve of 10).
    retry_budget: float = 0.2

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: LimitsConfig | None = None,
                     ) -> LimitsConfig:
        out = updated(base or cls(), data, "limits", _coerce)
        if out.min > out.max:
            raise ValueError(f"limits `min` ({out.min}) is larger than `max` ({out.max})")
        return out


def _coerce(key: str, value: Any) -> Any:
    if key == "adaptive":
        if str(value).lower() == "auto":
            return None
        flag = switch(value)
        if flag is None:
            raise ValueError(f"limits `adaptive` must be true, false or auto, got {value!r}")
        return flag
    if key == "schedule":
        if value not in POLICIES:
            raise ValueError(f"limits `schedule` must be one of {', '.join(POLICIES)}, "
                             f"got {value!r}")
        return value
    if key == "algorithm":
        if value not in ALGORITHMS:
            raise ValueError(f"limits `algorithm` must be one of {', '.join(ALGORITHMS)}, "
                             f"got {value!r}")
        return value
    num = non_negative("limits", key, value)
    if key in ("initial", "min", "max"):
        if num != int(num) or num < 1:
            raise ValueError(f"limits `{key}` must be a whole number >= 1, got {value!r}")
        return int(num)
    return num


class AdaptiveLimiter(Limiter):
    """A :class:`Limiter` whose ``limit`` follows the endpoint's measured capacity.

    Provider calls ``acquire`` a slot, then report ``sample(start, end, dropped)`` (or
    just ``release()`` for an attempt that says nothing about capacity: cancelled, or a
    non-retryable failure). ``history`` keeps ``(time, limit)`` after every change.
    """

    __slots__ = ("algorithm", "min_limit", "max_limit", "estimate", "rtt_min",
                 "slow_start", "_w_start", "_n", "_rtt_sum", "_ok", "_drops", "_peak",
                 "history")

    def __init__(self, initial: int = 10, *, min_limit: int = 1, max_limit: int = 1000,
                 algorithm: str = "gradient", aging_s: float = 0.0,
                 policy: str = "fifo") -> None:
        initial = max(min_limit, min(max_limit, initial))
        super().__init__(initial, aging_s, policy)
        self.algorithm = algorithm
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.estimate = float(initial)
        self.rtt_min = math.inf
        self.slow_start = algorithm == "gradient"
        self._w_start = -math.inf
        self._n = 0
        self._rtt_sum = 0.0
        self._ok = 0
        self._drops = 0
        self._peak = 0
        self.history: list[tuple[float, int]] = []

    @classmethod
    def from_config(cls, cfg: LimitsConfig) -> AdaptiveLimiter:
        return cls(cfg.initial, min_limit=cfg.min, max_limit=cfg.max,
                   algorithm=cfg.algorithm, aging_s=cfg.aging_ms / 1000,
                   policy=cfg.schedule)

    async def acquire(self, priority: float = 0.0, flow: Any = None,
                      path: CallPath | None = None) -> bool:
        queued = await super().acquire(priority, flow, path)
        if self.active > self._peak:
            self._peak = self.active
        return queued

    def _drain(self) -> None:
        super()._drain()
        if self.active > self._peak:
            self._peak = self.active

    def set_max(self, cap: int, now: float) -> None:
        """A new ceiling ``cap`` (this process's share of the run's ``max``, rebalanced
        between Ray workers): the limit drops to it at once, and may grow up to it."""
        self.max_limit = max(self.min_limit, cap)
        if self.estimate > self.max_limit:
            self.estimate = float(self.max_limit)
            if self.limit > self.max_limit:
                self.limit = self.max_limit
                self.history.append((now, self.limit))

    def sample(self, start: float, end: float, dropped: bool,
               service: str | None = None) -> None:
        """One finished attempt (loop seconds) of ``service``; releases its slot."""
        if start >= self._w_start:
            self._n += 1
            if dropped:
                self._drops += 1
            else:
                self._ok += 1
                self._rtt_sum += end - start
            if self._n >= MIN_WINDOW:
                self._update(end)
        self.release(service, 0.0 if dropped else end - start)

    def _update(self, now: float) -> None:
        limit = self.estimate
        used = self._peak * 2 >= self.limit
        new = limit
        g = 1.0
        if self._ok and self.algorithm == "gradient":
            rtt = self._rtt_sum / self._ok
            self.rtt_min = min(self.rtt_min * (1 + DRIFT), rtt)
            g = TOLERANCE * self.rtt_min / rtt if rtt > 0 else 1.0
        if self._drops:
            new = limit * max(0.5, min(BACKOFF, g, 1 - self._drops / self._n))
            self.slow_start = False
        elif self.algorithm == "aimd":
            if used:
                new = limit + 1
        elif self._ok:
            if g >= 1.0:
                if used:
                    new = limit * 2 if self.slow_start else limit + max(1.0, math.log10(limit))
            else:
                self.slow_start = False
                new = limit * max(0.5, g)
        self.estimate = max(float(self.min_limit), min(float(self.max_limit), new))
        old = self.limit
        self.limit = max(self.min_limit, int(self.estimate))
        if self.limit != old:
            self.history.append((now, self.limit))
        # next window: calls that start from now on
        self._w_start = now
        self._n = self._ok = self._drops = 0
        self._rtt_sum = 0.0
        self._peak = self.active
        if self.limit > old:
            self._drain()
