"""``GET /metrics``: Prometheus text (prometheus_client, one registry per server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["CONTENT_TYPE", "Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Runs, failures, service calls and their latency, tokens and queue depth."""

    def __init__(self, *, active: Callable[[], int], queue_depth: Callable[[], int]) -> None:
        self.registry = r = CollectorRegistry()
        self.runs = Counter("cxpar_runs", "Runs finished, by status (ok, failed, "
                            "cancelled).", ["status"], registry=r)
        self.run_seconds = Histogram("cxpar_run_duration_seconds", "Duration of finished "
                                     "runs.", buckets=_BUCKETS, registry=r)
        self.errors = Counter("cxpar_run_errors", "Runtime errors in runs, by type.",
                              ["type"], registry=r)
        self.calls = Counter("cxpar_service_calls", "Provider requests, by service and "
                             "outcome (ok, error).", ["service", "outcome"], registry=r)
        self.call_seconds = Histogram("cxpar_service_call_duration_seconds", "Latency of "
                                      "provider requests, by service.", ["service"],
                                      buckets=_BUCKETS, registry=r)
        self.tokens = Counter("cxpar_tokens", "Tokens the provider reported, by service and "
                              "direction (input, output).", ["service", "direction"],
                              registry=r)
        self.requests = Counter("cxpar_http_requests", "HTTP requests, by route and status "
                                "code.", ["route", "code"], registry=r)
        active_g = Gauge("cxpar_runs_active", "Runs in flight.", registry=r)
        active_g.set_function(lambda: float(active()))
        queue_g = Gauge("cxpar_queue_depth", "Provider calls waiting for a slot of the "
                        "global concurrency limit.", registry=r)
        queue_g.set_function(lambda: float(queue_depth()))

    def event(self, ev: dict[str, Any]) -> None:
        """Count one live event of any run (``call.end`` → calls and latency)."""
        if ev.get("type") != "call.end":
            return
        service = str(ev.get("service"))
        self.calls.labels(service, "ok" if ev.get("ok") else "error").inc()
        ms = ev.get("ms")
        if isinstance(ms, (int, float)):
            self.call_seconds.labels(service).observe(max(0.0, ms) / 1000)
        usage = ev.get("usage")
        if isinstance(usage, dict):
            for direction in ("input", "output"):
                n = usage.get(f"{direction}_tokens")
                if isinstance(n, int) and n > 0:
                    self.tokens.labels(service, direction).inc(n)

    def run_done(self, status: str, duration_ms: float | None,
                 errors: list[dict[str, Any]]) -> None:
        """Count one finished run."""
        self.runs.labels(status).inc()
        if duration_ms is not None:
            self.run_seconds.observe(duration_ms / 1000)
        for err in errors:
            self.errors.labels(str(err.get("type", "unknown"))).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
