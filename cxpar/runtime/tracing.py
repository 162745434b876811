"""What a run did, recorded once for ``--stats``, ``--stats-json``, ``--trace``, the
dashboard and OpenTelemetry (SPEC §6.4, issue 19).

The :class:`Recorder` keeps two things:

- **aggregates** (always, cheap): per service and per handler, counts, failures,
  retries, durations, queueing, tokens and cost — the dashboard reads them live;
- **spans** (``keep_spans``): one :class:`Span` per run / batch stream, handler
  invocation (emitted, branch or ``handlers:`` item; one per attempt), service call,
  join, provider attempt and — when a provider retried inside an attempt — request.
  Each span knows its parent (the span it ran in), whether the parent waited for it
  (``awaited``) or it was emitted (``trigger``: the emit time), so the stats can walk the
  run's critical path backwards (:mod:`cxpar.runtime.stats`).

The current span travels in the :data:`SPAN` context variable: each handler task sets
its own, a service call sets its own around the parts it starts. Listeners
(:meth:`Recorder.listen`, e.g. the OpenTelemetry exporter) see every finished span.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from .providers.base import CallContext, Usage

__all__ = ["Recorder", "RecorderPart", "Span", "SPAN", "label_of"]

#: The span the running code belongs to (None: the run's root).
SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar("cx_span", default=None)


def label_of(fn: Any) -> str:
    """A handler's CX name (``on a.b``, ``Entity: on a.b``) for stats and traces."""
    return str(getattr(fn, "__cx_name__", None) or getattr(fn, "__qualname__", "handler"))


class Span:
    """One recorded piece of work (times in ``loop.time()`` seconds)."""

    __slots__ = ("id", "parent", "kind", "name", "t0", "t1", "trigger", "awaited", "err",
                 "msg", "pid", "attrs", "usage", "cost", "unpriced", "prev")

    def __init__(self, sid: int, parent: Span | None, kind: str, name: str, t0: float,
                 awaited: bool, trigger: float, pid: int, attrs: dict[str, Any]) -> None:
        self.id = sid
        self.parent = parent
        self.kind = kind
        self.name = name
        self.t0 = t0
        self.t1 = -1.0
        self.trigger = trigger
        self.awaited = awaited
        self.err: str | None = None
        self.msg: str | None = None
        self.pid = pid
        self.attrs = attrs
        #: Tokens this span's request(s) reported (attempt and request spans only).
        self.usage: Usage | None = None
        self.cost: float | None = None
        self.unpriced = False
        #: The attempt this one retries (its predecessor on the critical path).
        self.prev: Span | None = None

    @property
    def done(self) -> bool:
        return self.t1 >= 0

    def owner(self) -> Span:
        """The nearest call, handler, stream or run span at or above this one."""
        s: Span = self
        while s.kind in ("attempt", "request", "join", "queue") and s.parent is not None:
            s = s.parent
        return s

    def handler(self) -> Span | None:
        """The handler/stream/run span a call span was made from."""
        p = self.parent
        while p is not None and p.kind not in ("handler", "stream", "run"):
            p = p.parent
        return p

    def __repr__(self) -> str:
        return f"<Span {self.id} {self.kind} {self.name!r} {self.t0:.6f}..{self.t1:.6f}>"


@dataclass(slots=True)
class _Agg:
    """Totals of one service or handler (what ``--stats`` prints)."""

    count: int = 0
    failures: int = 0
    retries: int = 0
    #: Of ``retries``: requests a provider sent again itself (transport retries).
    transport: int = 0
    #: Latencies (s): provider requests for a service, invocations for a handler.
    durations: list[float] = field(default_factory=list)
    queued_s: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    unpriced: int = 0
    #: Service calls with a join: summed wall time and summed sequential time (s).
    wall_s: float = 0.0
    sequential_s: float = 0.0
    #: Seconds calls waited for their endpoint's rpm/tpm room or pause (issue 20).
    rate_wait_s: float = 0.0
    #: Time to the first chunk of each streamed request (s).
    ttfts: list[float] = field(default_factory=list)

    def add_usage(self, usage: Usage, cost: float | None) -> None:
        self.tokens_in += usage.input_tokens
        self.tokens_out += usage.output_tokens
        if cost is None:
            self.unpriced += 1
        else:
            self.cost += cost

    @property
    def cost_usd(self) -> float | None:
        return None if self.unpriced else self.cost

    def add(self, other: _Agg) -> None:
        """Add ``other``'s totals (the same service or handler, recorded elsewhere)."""
        self.count += other.count
        self.failures += other.failures
        self.retries += other.retries
        self.transport += other.transport
        self.durations.extend(other.durations)
        self.queued_s += other.queued_s
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        self.cost += other.cost
        self.unpriced += other.unpriced
        self.wall_s += other.wall_s
        self.sequential_s += other.sequential_s
        self.rate_wait_s += other.rate_wait_s
        self.ttfts.extend(other.ttfts)


@dataclass
class RecorderPart:
    """What a recorder in another process (a Ray worker's) recorded since it was last
    drained: the finished streams' spans and every aggregate (see :meth:`Recorder.drain`
    and :meth:`Recorder.absorb`)."""

    spans: list[Span] = field(default_factory=list)
    streams: list[Span] = field(default_factory=list)
    aggs: dict[tuple[str, str], _Agg] = field(default_factory=dict)
    waits: dict[str, list[float]] = field(default_factory=dict)
    flow_waits: dict[str, list[float]] = field(default_factory=dict)
    processes: dict[int, str] = field(default_factory=dict)


class Recorder:
    """Aggregates (always) and spans (``keep_spans``) of one run or batch."""

    def __init__(self, *, keep_spans: bool = True, meter: Any = None) -> None:
        self.keep_spans = keep_spans
        #: The run's :class:`~cxpar.runtime.cost.Meter` (prices usage); set by the runner.
        self.meter = meter
        self.spans: list[Span] = []
        self.aggs: dict[tuple[str, str], _Agg] = {}
        self.root: Span | None = None
        #: Trace processes other than the default pid 1 (batch streams): pid → name.
        self.processes: dict[int, str] = {}
        self.listeners: list[Callable[[Span], None]] = []
        self.start_listeners: list[Callable[[Span], None]] = []
        #: Keep each provider request's text and answer on its attempt span
        #: (``input``/``output`` attrs; ``--otel-content``).
        self.content = False
        #: Called once by :meth:`close` (exporters flush).
        self.on_close: list[Callable[[], None]] = []
        #: The batch streams' spans (for the stream distribution).
        self.streams: list[Span] = []
        #: Seconds provider calls waited for a slot (rule 45): each wait per service;
        #: per stream (flow label) [waits, seconds].
        self.waits: dict[str, list[float]] = {}
        self.flow_waits: dict[str, list[float]] = {}
        self._next = 1

    # ---------------------------------------------------------------- spans
    def listen(self, fn: Callable[[Span], None], *,
               on_start: Callable[[Span], None] | None = None) -> None:
        """Call ``fn(span)`` for every span when it ends (parents after children, except
        emitted handlers, which may end after their emitter), and ``on_start(span)`` when
        it starts (parents before children)."""
        self.listeners.append(fn)
        if on_start is not None:
            self.start_listeners.append(on_start)

    def close(self) -> None:
        """Run the :attr:`on_close` callbacks once (flush exporters)."""
        fns, self.on_close = self.on_close, []
        for fn in fns:
            fn()

    def agg(self, cat: str, name: str) -> _Agg:
        a = self.aggs.get((cat, name))
        if a is None:
            a = self.aggs[(cat, name)] = _Agg()
        return a

    def start_run(self, t: float, name: str = "run") -> Span | None:
        """The root span (the whole run or batch)."""
        if not self.keep_spans:
            return None
        self.root = self._new(None, "run", name, t, True, t, 1, {})
        return self.root

    def end_run(self, t: float, err: str | None = None) -> None:
        if self.root is not None and not self.root.done:
            self.end(self.root, t, err)

    def begin(self, kind: str, name: str, parent: Span | None, t: float, *,
              awaited: bool = True, trigger: float | None = None,
              attrs: dict[str, Any] | None = None, pid: int | None = None) -> Span | None:
        """Start a span under ``parent`` (None: the root); None when spans are off."""
        if not self.keep_spans:
            return None
        if parent is None:
            parent = self.root
        return self._new(parent, kind, name, t, awaited, t if trigger is None else trigger,
                         pid if pid is not None else (parent.pid if parent else 1),
                         attrs if attrs is not None else {})

    def _new(self, parent: Span | None, kind: str, name: str, t: float, awaited: bool,
             trigger: float, pid: int, attrs: dict[str, Any]) -> Span:
        s = Span(self._next, parent, kind, name, t, awaited, trigger, pid, attrs)
        self._next += 1
        self.spans.append(s)
        for fn in self.start_listeners:
            fn(s)
        return s

    def end(self, span: Span | None, t: float, err: str | None = None,
            msg: str | None = None) -> None:
        if span is None or span.done:
            return
        span.t1 = max(t, span.t0)
        span.err = err
        span.msg = msg
        for fn in self.listeners:
            fn(span)

    def stream(self, index: int, t: float) -> Span | None:
        """A batch stream's span (its own trace process)."""
        pid = index + 2
        if self.keep_spans:
            self.processes[pid] = f"record {index}"
        return self.begin("stream", f"record {index}", None, t, pid=pid,
                          attrs={"index": index})

    def end_stream(self, span: Span | None, t0: float, t: float, err: str | None,
                   msg: str | None = None) -> None:
        a = self.agg("stream", "stream")
        a.count += 1
        if err is not None:
            a.failures += 1
        a.durations.append(t - t0)
        if span is not None:
            self.end(span, t, err, msg)
            self.streams.append(span)

    # ---------------------------------------------------------------- services
    def attempt_done(self, service: str, span: Span | None, t0: float, t1: float,
                     err: str | None, msg: str | None, ctx: CallContext) -> None:
        """One provider attempt ended (``t0``: the request was sent): its latency, its
        usage, and the provider's transport retries inside it (one request span each)."""
        a = self.agg("service", service)
        a.durations.append(t1 - t0)
        retries = [m for m in ctx.marks if m[1] != "usage"]
        a.retries += len(retries)
        a.transport += len(retries)
        usage = ctx.usage
        meter = self.meter
        for u in usage:
            c = meter.pricing.cost(u) if meter is not None else None
            a.add_usage(u, c)
        if span is None:
            return
        handler = span.owner().handler()
        if handler is not None and usage:
            h = self.agg("handler", _handler_name(handler))
            for u in usage:
                h.add_usage(u, meter.pricing.cost(u) if meter is not None else None)
        if not retries:
            self._put_usage(span, usage)
            self.end(span, t1, err, msg)
            return
        # Split the attempt into its requests at each transport retry; each request
        # span carries the usage reported while it ran.
        bounds = [t0] + [m[0] for m in retries] + [t1]
        reqs: list[Span] = []
        for i in range(len(bounds) - 1):
            r = self.begin("request", f"{service} request {i + 1}", span, bounds[i],
                           attrs={"service": service, "request": i + 1})
            assert r is not None
            reqs.append(r)
        got: list[list[Usage]] = [[] for _ in reqs]
        k = 0
        for m in ctx.marks:
            if m[1] == "usage" and m[2] is not None:
                got[k].append(m[2])
            elif m[1] != "usage":
                k += 1
        for i, r in enumerate(reqs):
            self._put_usage(r, got[i])
            last = i == len(reqs) - 1
            reason = None if last else retries[i][1][len("retry: "):]
            self.end(r, bounds[i + 1], err if last else "retry", msg if last else reason)
        self.end(span, t1, err, msg)

    def _put_usage(self, span: Span, usage: Sequence[Usage]) -> None:
        if not usage:
            return
        tin = sum(u.input_tokens for u in usage)
        tout = sum(u.output_tokens for u in usage)
        models = {u.model for u in usage if u.model}
        span.usage = Usage(tin, tout, models.pop() if len(models) == 1 else None,
                           all(u.estimated for u in usage))
        meter = self.meter
        cost: float | None = 0.0
        for u in usage:
            c = meter.pricing.cost(u) if meter is not None else None
            if c is None or cost is None:
                cost = None
            else:
                cost += c
        span.cost = cost
        span.unpriced = cost is None

    def call_done(self, service: str, failed: bool, retries: int, queued_s: float) -> None:
        """One service call's provider part ended (after all its attempts; ``queued_s``
        is reported separately through :meth:`queued`)."""
        a = self.agg("service", service)
        a.count += 1
        if failed:
            a.failures += 1
        a.retries += retries

    def joined(self, service: str, wall_s: float, parts: Sequence[float]) -> None:
        """A call with branches joined: its wall time and its parts' durations (provider
        and each branch invocation); sequential = wall + sum(parts) - max(parts)."""
        if not parts:
            return
        a = self.agg("service", service)
        a.wall_s += wall_s
        a.sequential_s += wall_s + sum(parts) - max(parts)

    def rate_wait(self, service: str, t0: float, t1: float) -> None:
        """A call (stats row ``service``) waited for its endpoint's rate-limit room from
        ``t0`` to ``t1`` (part of its queue wait, reported through :meth:`queued` too)."""
        self.agg("service", service).rate_wait_s += t1 - t0

    def first_token(self, service: str, seconds: float) -> None:
        """A streamed request (stats row ``service``) got its first chunk after
        ``seconds``."""
        self.agg("service", service).ttfts.append(seconds)

    def timer(self, t0: float, t1: float) -> None:
        """An ``await`` timer ended (a runtime service that never reaches a provider)."""
        a = self.agg("service", "await")
        a.count += 1
        a.durations.append(t1 - t0)

    def queued(self, service: str, t0: float, t1: float, flow: str | None = None,
               parent: Span | None = None) -> None:
        """A provider call of ``service`` waited for a slot from ``t0`` to ``t1`` (rule
        45); ``flow``: the stream it belongs to (``record 3``, ``top level``);
        ``parent``: the call's span (spans on: the wait becomes a ``queue`` span)."""
        self.agg("service", service).queued_s += t1 - t0
        if parent is not None:
            self.end(self.begin("queue", f"{service} queued", parent, t0,
                                attrs={"service": service,
                                       "queued_ms": round((t1 - t0) * 1000, 6)}), t1)
        self.waits.setdefault(service, []).append(t1 - t0)
        key = flow or "top level"
        w = self.flow_waits.get(key)
        if w is None:
            self.flow_waits[key] = [1, t1 - t0]
        else:
            w[0] += 1
            w[1] += t1 - t0

    def queue_rows(self) -> dict[str, Any]:
        """Time provider calls waited for a slot (rule 45): per service (waits, total,
        p50/p95/max ms) and per stream (streams that waited, mean/p95/max ms, the five
        that waited longest)."""
        from .stats import queue_rows

        return queue_rows(self)

    # ---------------------------------------------------------------- handlers
    def invocation_done(self, label: str, t0: float, t1: float, failed: bool,
                        retries: int = 0) -> None:
        """One handler invocation ended (all its attempts)."""
        a = self.agg("handler", label)
        a.count += 1
        if failed:
            a.failures += 1
        a.retries += retries
        a.durations.append(t1 - t0)

    def handler_span(self, fn: Any, inst: Any, event: str, parent: Span | None, t: float,
                     *, awaited: bool, trigger: float | None = None,
                     attrs: dict[str, Any] | None = None) -> Span | None:
        """Start the span of one handler invocation (attempt) for ``event``."""
        if not self.keep_spans:
            return None
        label = label_of(fn)
        name = label if label.endswith(" " + event) else f"{label} [{event}]"
        at = {"handler": label, "event": event}
        if inst is not None and hasattr(inst, "cls"):
            at["entity"] = inst.cls
        if attrs:
            at.update(attrs)
        return self.begin("handler", name, parent, t, awaited=awaited, trigger=trigger,
                          attrs=at)

    # ---------------------------------------------------------------- other processes
    def drain(self, pids: set[int]) -> RecorderPart:
        """Take out what was recorded here for another recorder to :meth:`absorb`: the
        spans of the trace processes ``pids`` (finished batch streams) and of the root
        process, and every aggregate and wait so far (whatever stream it came from)."""
        keep: list[Span] = []
        part = RecorderPart(aggs=self.aggs, waits=self.waits, flow_waits=self.flow_waits)
        for s in self.spans:
            (part.spans if s.pid in pids or s.pid == 1 else keep).append(s)
        self.spans = keep
        part.streams = [s for s in self.streams if s.pid in pids]
        self.streams = [s for s in self.streams if s.pid not in pids]
        part.processes = {p: self.processes.pop(p) for p in pids if p in self.processes}
        self.aggs, self.waits, self.flow_waits = {}, {}, {}
        return part

    def absorb(self, part: RecorderPart, offset: float = 0.0) -> None:
        """Merge ``part`` (another process's :meth:`drain`) into this recorder: its
        aggregates add up, its spans get ids here, hang under this run's root, move by
        ``offset`` seconds onto this recorder's clock, and reach the listeners."""
        for key, a in part.aggs.items():
            self.agg(*key).add(a)
        for name, waits in part.waits.items():
            self.waits.setdefault(name, []).extend(waits)
        for flow, (n, secs) in part.flow_waits.items():
            w = self.flow_waits.setdefault(flow, [0, 0.0])
            w[0] += n
            w[1] += secs
        if not self.keep_spans:
            return
        self.processes.update(part.processes)
        for s in part.spans:
            s.id = self._next
            self._next += 1
            if s.parent is None:
                s.parent = self.root
            s.t0 += offset
            s.trigger += offset
            if s.done:
                s.t1 += offset
            self.spans.append(s)
            for fn in self.start_listeners:
                fn(s)
        for s in part.spans:
            if s.done:
                for fn in self.listeners:
                    fn(s)
        self.streams.extend(part.streams)

    # ---------------------------------------------------------------- output
    def stats(self) -> dict[str, Any]:
        """The ``--stats-json`` document (see docs/cli.md)."""
        from .stats import build_stats

        return build_stats(self)

    def rows(self) -> list[dict[str, Any]]:
        """One row per service/handler (see :func:`cxpar.runtime.stats.rows`)."""
        from .stats import rows

        return rows(self)

    def render_stats(self, stream: IO[str]) -> None:
        """The ``--stats`` tables on ``stream`` (stderr)."""
        from .stats import render

        render(self, stream)

    def write_stats_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.stats(), f, indent=2)
            f.write("\n")

    def trace_events(self) -> list[dict[str, Any]]:
        from .trace import trace_events

        return trace_events(self)

    def write_trace(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"traceEvents": self.trace_events(), "displayTimeUnit": "ms"}, f)


def _handler_name(span: Span) -> str:
    if span.kind == "handler":
        return str(span.attrs.get("handler", span.name))
    return "(top level)"
