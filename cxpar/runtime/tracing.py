"""Statistics (``--stats``) and Chrome/Perfetto traces (``--trace out.json``), SPEC §6.4."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import IO, Any

__all__ = ["Recorder"]


@dataclass(slots=True)
class _Agg:
    count: int = 0
    failures: int = 0
    durations: list[float] = field(default_factory=list)
    critical_s: float = 0.0


def _pct(sorted_vals: list[float], p: float) -> float:
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, round(p * (len(sorted_vals) - 1))))
    return sorted_vals[i]


class Recorder:
    """Collects one span per provider call and branch invocation, and one row per call."""

    def __init__(self, *, keep_spans: bool = True) -> None:
        self.keep_spans = keep_spans
        self.spans: list[tuple[str, str, str, float, float, str | None, int]] = []
        self.aggs: dict[tuple[str, str], _Agg] = {}
        #: Trace processes other than the default pid 1 (batch streams): pid → name.
        self.processes: dict[int, str] = {}
        self.calls: dict[str, list[float]] = {}  # service → [n, wall, busy]
        self._crit: dict[str, float] = {}
        #: Seconds provider calls waited for a slot (rule 45): each wait per service;
        #: per stream (flow label) [waits, seconds].
        self.waits: dict[str, list[float]] = {}
        self.flow_waits: dict[str, list[float]] = {}
        #: HTTP requests a provider sent again itself (``[provider] max_retries``),
        #: per service: not CX ``retries``, which count as attempts of a call.
        self.transport_retries: dict[str, int] = {}

    def span(self, name: str, cat: str, event: str, t0: float, t1: float,
             err: str | None, pid: int = 1) -> None:
        """Record one provider call (cat "service") or branch invocation (cat "handler");
        ``pid`` is the trace process (a batch stream's)."""
        a = self.aggs.get((cat, name))
        if a is None:
            a = self.aggs[(cat, name)] = _Agg()
        a.count += 1
        if err is not None:
            a.failures += 1
        a.durations.append(t1 - t0)
        if self.keep_spans:
            self.spans.append((name, cat, event, t0, t1, err, pid))

    def queued(self, service: str, t0: float, t1: float, flow: str | None = None,
               pid: int = 1) -> None:
        """A provider call of ``service`` waited for a slot from ``t0`` to ``t1`` (rule
        45); ``flow``: the stream it belongs to (``record 3``, ``top level``)."""
        self.waits.setdefault(service, []).append(t1 - t0)
        key = flow or "top level"
        w = self.flow_waits.get(key)
        if w is None:
            self.flow_waits[key] = [1, t1 - t0]
        else:
            w[0] += 1
            w[1] += t1 - t0
        if self.keep_spans:
            self.spans.append((service, "queue", service, t0, t1, None, pid))

    def call(self, service: str, t0: float, t1: float, critical_s: float,
             busy_s: float) -> None:
        """Record one whole service call: wall time and summed branch/provider time."""
        c = self.calls.setdefault(service, [0.0, 0.0, 0.0])
        c[0] += 1
        c[1] += t1 - t0
        c[2] += busy_s
        self._crit[service] = self._crit.get(service, 0.0) + critical_s

    def transport_retry(self, service: str) -> None:
        """A provider retried one request of ``service`` on its own (transport level)."""
        self.transport_retries[service] = self.transport_retries.get(service, 0) + 1

    def tagged(self, pid: int, process: str) -> _Tagged:
        """A view that records into this recorder under trace process ``pid``."""
        self.processes[pid] = process
        return _Tagged(self, pid)

    # ---------------------------------------------------------------- output
    def rows(self) -> list[dict[str, Any]]:
        """One row per service/handler: count, failures, p50/p95 ms, critical ms, speedup."""
        out = []
        for (cat, name), a in sorted(self.aggs.items()):
            d = sorted(a.durations)
            row: dict[str, Any] = {
                "kind": cat, "name": name, "count": a.count, "failures": a.failures,
                "p50_ms": round(_pct(d, 0.5) * 1000, 3), "p95_ms": round(_pct(d, 0.95) * 1000, 3),
                "total_ms": round(sum(d) * 1000, 3), "speedup": None,
                "critical_ms": None,
            }
            if cat == "service":
                row["transport_retries"] = self.transport_retries.get(name, 0)
            if cat == "service" and name in self.calls:
                n, wall, busy = self.calls[name]
                row["critical_ms"] = round(self._crit.get(name, 0.0) * 1000, 3)
                row["speedup"] = round(busy / wall, 2) if wall > 0 else None
            out.append(row)
        return out

    def queue_rows(self) -> dict[str, Any]:
        """Time provider calls waited for a slot (rule 45): per service (waits, total,
        p50/p95/max ms) and per stream (streams that waited, mean/p95/max ms, the five
        that waited longest)."""
        services = []
        for name, waits in sorted(self.waits.items()):
            d = sorted(waits)
            services.append({"service": name, "waits": len(d),
                             "queued_ms": round(sum(d) * 1000, 3),
                             "p50_ms": round(_pct(d, 0.5) * 1000, 3),
                             "p95_ms": round(_pct(d, 0.95) * 1000, 3),
                             "max_ms": round(d[-1] * 1000, 3)})
        flows = sorted(self.flow_waits.items(), key=lambda kv: (-kv[1][1], kv[0]))
        totals = sorted(w[1] for _, w in flows)
        streams: dict[str, Any] = {
            "streams": len(flows),
            "mean_ms": round(sum(totals) / len(totals) * 1000, 3) if totals else 0.0,
            "p95_ms": round(_pct(totals, 0.95) * 1000, 3),
            "max_ms": round(totals[-1] * 1000, 3) if totals else 0.0,
            "longest": [{"stream": k, "waits": int(w[0]), "queued_ms": round(w[1] * 1000, 3)}
                        for k, w in flows[:5]],
        }
        return {"services": services, "streams": streams}

    def render_stats(self, stream: IO[str]) -> None:
        """A rich table on ``stream`` (stderr); queue waits in a second one, if any."""
        from rich.console import Console
        from rich.table import Table

        table = Table(title="cxpar stats")
        for col in ("kind", "name", "count", "failures", "p50 ms", "p95 ms", "total ms",
                    "critical ms", "speedup"):
            table.add_column(col, justify="left" if col in ("kind", "name") else "right")
        for r in self.rows():
            table.add_row(r["kind"], r["name"], str(r["count"]), str(r["failures"]),
                          f"{r['p50_ms']:g}", f"{r['p95_ms']:g}", f"{r['total_ms']:g}",
                          "" if r["critical_ms"] is None else f"{r['critical_ms']:g}",
                          "" if r["speedup"] is None else f"{r['speedup']:g}x")
        console = Console(file=stream, width=120)
        console.print(table)
        if self.waits:
            self._render_queue(console)
        if self.transport_retries:
            console.print("transport retries (requests the provider sent again): " + ", ".join(
                f"{name} {n}" for name, n in sorted(self.transport_retries.items())),
                markup=False, highlight=False)

    def _render_queue(self, console: Any) -> None:
        from rich.table import Table

        q = self.queue_rows()
        table = Table(title="queue waits for a slot (--max-concurrency / adaptive limit)")
        for col in ("service", "waits", "queued ms", "p50 ms", "p95 ms", "max ms"):
            table.add_column(col, justify="left" if col == "service" else "right")
        for r in q["services"]:
            table.add_row(r["service"], str(r["waits"]), f"{r['queued_ms']:g}",
                          f"{r['p50_ms']:g}", f"{r['p95_ms']:g}", f"{r['max_ms']:g}")
        console.print(table)
        st = q["streams"]
        longest = ", ".join(f"{x['stream']} {x['queued_ms']:g} ms" for x in st["longest"])
        console.print(f"queue wait per stream: {st['streams']} waited, mean "
                      f"{st['mean_ms']:g} ms, p95 {st['p95_ms']:g} ms, max {st['max_ms']:g} "
                      f"ms; longest: {longest}", highlight=False, soft_wrap=True)

    def trace_events(self) -> list[dict[str, Any]]:
        """Chrome trace events: one complete ("X") event per span, one track per name
        (per process: batch streams get one process each)."""
        tids: dict[tuple[int, str], int] = {}
        ntracks: dict[int, int] = {}
        events: list[dict[str, Any]] = []
        for pid, pname in sorted(self.processes.items()):
            events.append({"name": "process_name", "ph": "M", "pid": pid,
                           "args": {"name": pname}})
            events.append({"name": "process_sort_index", "ph": "M", "pid": pid,
                           "args": {"sort_index": pid}})
        for name, cat, event, t0, t1, err, pid in self.spans:
            track = f"{cat}: {name}"
            tid = tids.get((pid, track))
            if tid is None:
                if cat == "stream":  # a batch stream's own span: the process's first track
                    tid = tids[(pid, track)] = 0
                else:
                    tid = tids[(pid, track)] = ntracks[pid] = ntracks.get(pid, 0) + 1
                events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                               "args": {"name": track}})
            events.append({"name": name if cat == "service" else event, "cat": cat,
                           "ph": "X", "pid": pid, "tid": tid, "ts": round(t0 * 1e6, 3),
                           "dur": round((t1 - t0) * 1e6, 3),
                           "args": {"error": err} if err else
                           {"queued_ms": round((t1 - t0) * 1000, 3)} if cat == "queue" else {}})
        return events

    def write_trace(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": self.trace_events(), "displayTimeUnit": "ms"}, f)


class _Tagged:
    """A :class:`Recorder` view for one trace process (one batch stream)."""

    __slots__ = ("rec", "pid")

    def __init__(self, rec: Recorder, pid: int) -> None:
        self.rec = rec
        self.pid = pid

    def span(self, name: str, cat: str, event: str, t0: float, t1: float,
             err: str | None) -> None:
        self.rec.span(name, cat, event, t0, t1, err, self.pid)

    def queued(self, service: str, t0: float, t1: float, flow: str | None = None) -> None:
        self.rec.queued(service, t0, t1, flow, self.pid)

    def transport_retry(self, service: str) -> None:
        self.rec.transport_retry(service)

    def call(self, service: str, t0: float, t1: float, critical_s: float,
             busy_s: float) -> None:
        self.rec.call(service, t0, t1, critical_s, busy_s)
