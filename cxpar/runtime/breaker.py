"""Circuit breakers per service and provider endpoint (SPEC §6.2, issue 9).

States: **closed** → **open** when, over a sliding time window, at least
``min_requests`` calls ended and the failure fraction reached ``failure_rate`` — or
after ``threshold`` consecutive failures (the original rule, kept so a dead endpoint
trips quickly at low traffic). **open** fails calls fast (``circuit_open``) for
``cooldown_s``; then **half-open** admits up to ``half_open_probes`` concurrent probe
calls: when that many probes succeed the breaker closes, the first probe failure opens
it again for another cool-down. Calls beyond the probes fail fast.

Callers ask :meth:`CircuitBreaker.admit` for a ticket and report the outcome with
:meth:`~CircuitBreaker.record` (or :meth:`~CircuitBreaker.release` for an attempt that
ended without one: cancelled, or a failure a retry cannot fix). Both return the name of
the new state on a transition (``"open"``/``"closed"``), so the runtime can emit
``system.circuit.open`` / ``system.circuit.closed`` into the program.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .validate import non_negative, switch, updated

__all__ = ["BreakerConfig", "CircuitBreaker", "CLOSED", "OPEN", "HALF_OPEN"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """``[breaker]`` in ``cxpar.toml`` / ``--breaker KEY=VALUE,…``; see docs/runtime.md."""

    enabled: bool = True
    #: Failure fraction over the window that opens the breaker (0 turns the rule off).
    failure_rate: float = 0.5
    #: Length of the sliding window, ms.
    window: float = 10_000
    #: Calls that must have ended in the window before the rate rule applies.
    min_requests: int = 20
    #: Consecutive failures that open the breaker regardless of the window (0 = off).
    threshold: int = 5
    #: Time an open breaker fails fast before probing, ms.
    cooldown_ms: float = 10_000
    #: Concurrent probe calls in half-open; that many successes close the breaker.
    half_open_probes: int = 1

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: BreakerConfig | None = None,
                     ) -> BreakerConfig:
        """Validated settings from a table (unknown keys and bad values → ValueError)."""
        return updated(base or cls(), data, "breaker", _coerce)

    def make(self) -> CircuitBreaker:
        return CircuitBreaker(self.threshold, self.cooldown_ms / 1000,
                              failure_rate=self.failure_rate, window_s=self.window / 1000,
                              min_requests=self.min_requests,
                              half_open_probes=self.half_open_probes)


def _coerce(key: str, value: Any) -> Any:
    if key == "enabled":
        flag = switch(value) if isinstance(value, (bool, str)) else None
        if flag is None:
            raise ValueError(f"breaker `enabled` must be true or false, got {value!r}")
        return flag
    num = non_negative("breaker", key, value)
    if key == "failure_rate":
        if num > 1:
            raise ValueError(f"breaker `failure_rate` must be in [0, 1], got {value!r}")
        return num
    if key in ("min_requests", "threshold", "half_open_probes"):
        if num != int(num) or (key == "half_open_probes" and num < 1):
            raise ValueError(f"breaker `{key}` must be a whole number"
                             f"{' >= 1' if key == 'half_open_probes' else ''}, got {value!r}")
        return int(num)
    if key == "window" and num <= 0:
        raise ValueError(f"breaker `window` must be > 0 ms, got {value!r}")
    return num


class CircuitBreaker:
    """One breaker (see the module docstring). Times are loop seconds."""

    __slots__ = ("threshold", "cooldown_s", "failure_rate", "window_s", "min_requests",
                 "half_open_probes", "state", "opened_at", "consecutive", "epoch",
                 "probes", "probe_ok", "_window", "_failures", "_last", "opens",
                 "last_rate", "last_requests", "last_failures")

    def __init__(self, threshold: int = 5, cooldown_s: float = 10.0, *,
                 failure_rate: float = 0.5, window_s: float = 10.0, min_requests: int = 20,
                 half_open_probes: int = 1) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.failure_rate = failure_rate
        self.window_s = window_s
        self.min_requests = max(1, min_requests)
        self.half_open_probes = max(1, half_open_probes)
        self.state = CLOSED
        self.opened_at: float | None = None
        self.consecutive = 0
        #: Half-open episodes so far; a probe's ticket is the episode it was admitted in.
        self.epoch = 0
        self.probes = 0  # probes in flight
        self.probe_ok = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._last = 0.0
        #: Times the breaker opened (for stats and tests).
        self.opens = 0
        # the window as it was when the breaker last changed state (event payloads)
        self.last_rate = 0.0
        self.last_requests = 0
        self.last_failures = 0

    @property
    def failures(self) -> int:
        """Consecutive failures (the name of the original breaker's counter)."""
        return self.consecutive

    # ------------------------------------------------------------------ window
    def _prune(self, now: float) -> None:
        w = self._window
        edge = now - self.window_s
        while w and w[0][0] <= edge:
            _, failed = w.popleft()
            if failed:
                self._failures -= 1

    def window_stats(self, now: float | None = None) -> tuple[int, int]:
        """``(requests, failures)`` that ended in the window before ``now``."""
        self._prune(self._last if now is None else now)
        return len(self._window), self._failures

    # ------------------------------------------------------------------ protocol
    def admit(self, now: float) -> int | None:
        """A ticket for one call attempt (0 while closed, the epoch for a probe), or None
        to fail fast."""
        self._last = max(self._last, now)
        if self.state == CLOSED:
            return 0
        if self.state == OPEN:
            assert self.opened_at is not None
            if now - self.opened_at < self.cooldown_s - 1e-9:  # 1 ns: float noise
                return None
            self.state = HALF_OPEN
            self.epoch += 1
            self.probes = 0
            self.probe_ok = 0
        if self.probes + self.probe_ok < self.half_open_probes:
            self.probes += 1
            return self.epoch
        return None

    def blocked(self, now: float) -> bool:
        """Whether :meth:`admit` would refuse for the cool-down (a peek: changes nothing).
        Calls check it before they queue for a slot, then ``admit`` once they have one."""
        return self.state == OPEN and self.opened_at is not None and \
            now - self.opened_at < self.cooldown_s - 1e-9

    def record(self, ticket: int, ok: bool, now: float) -> str | None:
        """The outcome of an admitted attempt; returns ``"open"``/``"closed"`` on a change."""
        self._last = max(self._last, now)
        if ticket > 0:  # a probe
            if ticket != self.epoch or self.state != HALF_OPEN:
                return None  # a probe of an episode that is already over
            self.probes -= 1
            if not ok:
                return self._open(now)
            self.probe_ok += 1
            if self.probe_ok >= self.half_open_probes:
                return self._close(now)
            return None
        if self.state != CLOSED:
            return None  # a call admitted before the breaker opened: no say any more
        self._prune(now)
        self._window.append((now, not ok))
        if ok:
            self.consecutive = 0
            return None
        self._failures += 1
        self.consecutive += 1
        if self.threshold > 0 and self.consecutive >= self.threshold:
            return self._open(now)
        n = len(self._window)
        if self.failure_rate > 0 and n >= self.min_requests and \
                self._failures >= self.failure_rate * n:
            return self._open(now)
        return None

    def release(self, ticket: int) -> None:
        """An admitted attempt ended without an outcome (cancelled, or not the endpoint's
        fault): a probe's place goes to the next call."""
        if ticket > 0 and ticket == self.epoch and self.state == HALF_OPEN:
            self.probes -= 1

    def _snapshot(self) -> None:
        n, f = len(self._window), self._failures
        self.last_requests, self.last_failures = n, f
        self.last_rate = round(f / n, 4) if n else 0.0

    def _open(self, now: float) -> str:
        self._snapshot()
        if self.state == HALF_OPEN:
            self.last_rate = 1.0  # the probe failed
        self.state = OPEN
        self.opened_at = now
        self.opens += 1
        self.probes = self.probe_ok = 0
        return OPEN

    def trip(self, now: float) -> bool:
        """Open a closed breaker because the same endpoint failed elsewhere (another Ray
        worker's breaker opened); True if it opened. No ``system.circuit.open`` event:
        this worker's streams did not see the failures."""
        if self.state != CLOSED:
            return False
        self._open(now)
        return True

    def _close(self, now: float) -> str:
        self.state = CLOSED
        self.opened_at = None
        self.consecutive = 0
        self._window.clear()
        self._failures = 0
        self.last_requests = self.last_failures = 0
        self.last_rate = 0.0
        return CLOSED

    def event_payload(self, service: str, state: str) -> dict[str, Any]:
        """The payload of ``system.circuit.<state>``."""
        return {"service": service, "state": state, "failureRate": self.last_rate,
                "requests": float(self.last_requests), "failures": float(self.last_failures),
                "windowMs": round(self.window_s * 1000, 3),
                "cooldownMs": round(self.cooldown_s * 1000, 3)}

    # ------------------------------------------------------------------ compatibility
    def allow(self, now: float) -> bool:
        """``admit`` as a yes/no (the original interface)."""
        return self.admit(now) is not None

    def success(self, now: float | None = None) -> str | None:
        return self.record(self.epoch if self.state == HALF_OPEN else 0, True,
                           self._last if now is None else now)

    def failure(self, now: float) -> str | None:
        return self.record(self.epoch if self.state == HALF_OPEN else 0, False, now)
