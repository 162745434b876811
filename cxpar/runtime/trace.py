"""``--trace out.json``: the recorder's spans as Chrome/Perfetto trace events.

Every span is one complete (``"X"``) slice, named with its entity and event
(``Desk: on ticket.new``, ``think attempt 2``); its args hold the span's id, its parent
and what it did (tokens, cost, error, attempt, ``_parallel``). Slices on one track must
nest, so each concurrent invocation gets a track of its own: a span goes on its
parent's track when it fits inside the parent with nothing else open there, else on the
lowest free track (a new one if none is free). Each batch stream is a process of its
own. Errors and retries are also instant events on the failing slice's track, and each
``emit`` is a flow arrow from the emitting slice to the handler it started.
"""

from __future__ import annotations

import heapq
from typing import Any

from .tracing import Recorder, Span

__all__ = ["trace_events", "span_args"]

EPS = 1e-9


def span_args(span: Span, base: float) -> dict[str, Any]:
    """What a slice's args show: identity, causality, outcome, usage."""
    args: dict[str, Any] = {"id": span.id, "kind": span.kind,
                            "parent": span.parent.id if span.parent is not None else None}
    if not span.awaited:
        args["emitted_at_ms"] = round((span.trigger - base) * 1000, 6)
    if span.prev is not None:
        args["retry_of"] = span.prev.id
    for k, v in span.attrs.items():
        if v is not None:
            args[k] = v
    if span.err is not None:
        args["error"] = span.err
        if span.msg:
            args["message"] = span.msg
    if span.usage is not None:
        args["tokens_in"] = span.usage.input_tokens
        args["tokens_out"] = span.usage.output_tokens
        if span.usage.model:
            args["model"] = span.usage.model
        args["cost_usd"] = span.cost
    return args


class _Lanes:
    """Track assignment for one trace process."""

    def __init__(self) -> None:
        self.stacks: list[list[Span]] = []
        self.busy: list[tuple[float, int]] = []   # (end of the bottom span, track)
        self.free: list[int] = []
        self.names: dict[int, str] = {}

    def place(self, span: Span, preferred: int | None) -> int:
        t0 = span.t0
        while self.busy and self.busy[0][0] <= t0 + EPS:
            _, tid = heapq.heappop(self.busy)
            self.stacks[tid].clear()
            heapq.heappush(self.free, tid)
        if preferred is not None:
            st = self.stacks[preferred]
            while st and st[-1].t1 <= t0 + EPS:
                st.pop()
            if st and st[-1] is span.parent and span.t1 <= st[-1].t1 + EPS:
                st.append(span)
                return preferred
        if self.free:
            tid = heapq.heappop(self.free)
        else:
            tid = len(self.stacks)
            self.stacks.append([])
        self.stacks[tid].append(span)
        heapq.heappush(self.busy, (span.t1, tid))
        self.names.setdefault(tid, span.name)
        return tid


def trace_events(rec: Recorder) -> list[dict[str, Any]]:
    """Chrome trace events for every recorded span (see the module docstring)."""
    root = rec.root
    spans = [s for s in rec.spans]
    if not spans:
        return []
    base = root.t0 if root is not None else min(s.t0 for s in spans)
    end = root.t1 if root is not None and root.done else max(s.t1 for s in spans)
    for s in spans:  # anything cut off by an interrupt ends with the run
        if not s.done:
            s.t1 = max(end, s.t0)
            s.err = s.err or "unfinished"

    def us(t: float) -> float:
        return round((t - base) * 1e6, 3)

    events: list[dict[str, Any]] = []
    for pid, pname in sorted(rec.processes.items()):
        events.append({"name": "process_name", "ph": "M", "pid": pid, "args": {"name": pname}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid,
                       "args": {"sort_index": pid}})
    if rec.processes:
        events.append({"name": "process_name", "ph": "M", "pid": 1,
                       "args": {"name": root.name if root is not None else "run"}})
    lanes: dict[int, _Lanes] = {}
    where: dict[int, tuple[int, int]] = {}
    order = sorted(spans, key=lambda s: (s.t0, -s.t1, s.id))
    for s in order:
        ln = lanes.get(s.pid)
        if ln is None:
            ln = lanes[s.pid] = _Lanes()
        p = s.parent
        pref = where[p.id][1] if p is not None and p.id in where and \
            where[p.id][0] == s.pid else None
        tid = ln.place(s, pref)
        where[s.id] = (s.pid, tid)
        ts, te = us(s.t0), us(s.t1)
        events.append({"name": s.name, "cat": s.kind, "ph": "X", "pid": s.pid, "tid": tid,
                       "ts": ts, "dur": round(te - ts, 3), "args": span_args(s, base)})
        if s.err is not None:
            events.append({"name": f"{'retry' if s.err == 'retry' else 'error'}: {s.name}",
                           "cat": "error", "ph": "i", "s": "t", "pid": s.pid, "tid": tid,
                           "ts": te, "args": {"error": s.err, "message": s.msg or ""}})
        if not s.awaited and p is not None and p.id in where:
            ppid, ptid = where[p.id]
            events.append({"name": "emit", "cat": "emit", "ph": "s", "id": s.id,
                           "pid": ppid, "tid": ptid, "ts": us(min(max(s.trigger, p.t0),
                                                                   p.t1))})
            events.append({"name": "emit", "cat": "emit", "ph": "f", "bp": "e", "id": s.id,
                           "pid": s.pid, "tid": tid, "ts": ts})
    for pid, ln in sorted(lanes.items()):
        for tid, name in sorted(ln.names.items()):
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"name": f"{tid}: {name}"}})
            events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                           "args": {"sort_index": tid}})
    return events
