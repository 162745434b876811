"""``cxpar run --dashboard``: a live rich view of a run (SPEC §6.4, issue 11).

A :class:`Monitor` reads counters the runtime keeps anyway (the stats
:class:`~cxpar.runtime.tracing.Recorder`, each runtime's in-flight counter and error
count, the limiter and the breakers); it adds no work to the scheduler's hot paths.
Rendering happens in rich's refresh thread at 4 Hz: each frame copies the counters
with C-level operations (``list(dict.items())``, slices), so it never iterates a
container the event loop is changing, and p95s are taken over the last
:data:`WINDOW` calls of each service.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from .cost import fmt_usd
from .stats import run_cost

__all__ = ["Monitor", "WINDOW", "console_writer"]

#: Recent calls per service used for the p95 latency.
WINDOW = 1000
#: calls/s is measured over the last this many seconds (over the run before that):
#: calls that finish in bursts (every think takes 800 ms) never read as 0.0 between.
RATE_WINDOW_S = 5.0


def _tasks_alive(loop: asyncio.AbstractEventLoop | None) -> int:
    """Unfinished asyncio tasks of the run's loop (handlers, branches, provider calls).

    Finished tasks stay in asyncio's registry until they are garbage collected, so
    counting the registry would never drop to 0; this counts tasks that are not done.
    """
    if loop is None:
        return 0
    try:
        return len(asyncio.all_tasks(loop))
    except RuntimeError:  # the registry kept changing under us: skip this frame's count
        return 0


class RateMeter:
    """Completions per second over the last :data:`RATE_WINDOW_S` seconds."""

    __slots__ = ("t0", "samples")

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.samples: deque[tuple[float, int]] = deque()

    def rate(self, now: float, count: int) -> float:
        """The rate at ``now`` when ``count`` calls have finished so far."""
        samples = self.samples
        samples.append((now, count))
        while len(samples) > 1 and samples[1][0] <= now - RATE_WINDOW_S:
            samples.popleft()
        t_old, c_old = samples[0]
        if now - t_old < RATE_WINDOW_S:  # not yet a full window: since the start
            t_old, c_old = self.t0, 0
        return (count - c_old) / max(1e-9, now - t_old)


def _p95(vals: list[float]) -> float:
    if not vals:
        return 0.0
    vals.sort()
    return vals[min(len(vals) - 1, round(0.95 * (len(vals) - 1)))]


class Monitor:
    """Live counters of one run (or one batch of streams) and their rich view."""

    def __init__(self, recorder: Any, *, limiter: Any = None,
                 breakers: dict[str, Any] | None = None,
                 adaptive: dict[str, Any] | None = None, critical: Sequence[str] = (),
                 batch: Any = None, runtimes: Sequence[Any] = ()) -> None:
        self.recorder = recorder
        self.limiter = limiter
        self.breakers = breakers if breakers is not None else {}
        #: Adaptive concurrency limiters by endpoint/service (created on first use).
        self.adaptive = adaptive if adaptive is not None else {}
        self.critical = list(critical)
        self.batch = batch
        self.runtimes: list[Any] = list(runtimes)
        self._handled_done = 0
        self._errors_done = 0
        self._t0 = time.monotonic()
        self._meters: dict[str, RateMeter] = {}
        #: The run's event loop (set by the runner): live task count.
        self.loop: asyncio.AbstractEventLoop | None = None

    def stream_done(self, rt: Any) -> None:
        """A batch stream ended: keep its counts, stop watching it."""
        try:
            self.runtimes.remove(rt)
        except ValueError:
            return
        self._handled_done += rt.handled
        self._errors_done += rt.error_count

    # ---------------------------------------------------------------- data
    def snapshot(self) -> dict[str, Any]:
        """Everything the view shows, as plain data (tests use this too)."""
        rts = list(self.runtimes)
        emitted_active = sum(rt._inflight for rt in rts)
        emitted_done = self._handled_done + sum(rt.handled for rt in rts)
        errors = self._errors_done + sum(rt.error_count for rt in rts)
        aggs = list(self.recorder.aggs.items()) if self.recorder is not None else []
        branch_done = branch_failed = 0
        now = time.monotonic()
        services = []
        for (cat, name), a in aggs:
            if cat == "handler":
                branch_done += a.count
                branch_failed += a.failures
            elif cat == "service":
                count = a.count
                meter = self._meters.get(name)
                if meter is None:
                    meter = self._meters[name] = RateMeter(self._t0)
                rate = meter.rate(now, count)
                waits = self.recorder.waits.get(name, []) if self.recorder else []
                services.append({"name": name, "calls": count, "failures": a.failures,
                                 "rate": rate,
                                 "p95_ms": _p95(a.durations[-WINDOW:]) * 1000,
                                 "wait_p95_ms": _p95(waits[-WINDOW:]) * 1000})
        services.sort(key=lambda s: s["name"])
        tokens = self._tokens(aggs, now)
        p95 = {s["name"]: s["p95_ms"] for s in services}
        crit = [{"service": c, "p95_ms": p95.get(c)} for c in self.critical]
        lim = self.limiter
        limit = None
        if lim is not None:
            limit = {"limit": getattr(lim, "limit", None), "active": getattr(lim, "active", 0),
                     "queued": getattr(lim, "queued", 0),
                     "adaptive": bool(getattr(lim, "adaptive", False)),
                     "schedule": getattr(lim, "policy", "fifo")}
        flow_waits = list(self.recorder.flow_waits.items()) if self.recorder else []
        queue = None
        if flow_waits:
            worst, (n, secs) = max(flow_waits, key=lambda kv: kv[1][1])
            queue = {"streams": len(flow_waits),
                     "mean_ms": sum(w[1] for _, w in flow_waits) / len(flow_waits) * 1000,
                     "max_ms": secs * 1000, "max_stream": worst}
        snap: dict[str, Any] = {
            "elapsed_s": now - self._t0,
            "handlers": {"active": emitted_active, "completed": emitted_done + branch_done,
                         "failed": errors + branch_failed},
            "tasks": _tasks_alive(self.loop),
            "services": services,
            "breakers": {k: b.state for k, b in list(self.breakers.items())},
            "limit": limit,
            "adaptive": {k: {"limit": a.limit, "active": a.active, "queued": a.queued}
                         for k, a in list(self.adaptive.items())},
            "critical": crit,
            "streams": None,
            #: Queue wait per stream (rule 45): streams that waited, mean, the longest.
            "queue": queue,
            #: Tokens in/out so far, tokens/s, cost so far (None: unknown, no price).
            "tokens": tokens,
        }
        b = self.batch
        if b is not None:
            snap["streams"] = {"in_flight": b.active, "done": b.done, "failed": b.failed,
                               "total": b.total - b.skipped, "eta_s": b.eta()}
            workers = dict(getattr(b, "workers", {}))
            if workers:  # --executor ray: records done and throughput per worker
                dt = max(time.monotonic() - b.t0, 1e-9)
                snap["workers"] = {k: {"done": n, "rate": n / dt} for k, n in workers.items()}
        return snap

    def _tokens(self, aggs: list[tuple[tuple[str, str], Any]], now: float) -> dict[str, Any]:
        """Tokens and cost so far over every service, and tokens/s (over the last
        :data:`RATE_WINDOW_S` seconds, like calls/s)."""
        rows = [a for (cat, _), a in aggs if cat == "service"]
        tin = sum(a.tokens_in for a in rows)
        tout = sum(a.tokens_out for a in rows)
        used = tin + tout
        meter = self._meters.get(" tokens")
        if meter is None:
            meter = self._meters[" tokens"] = RateMeter(self._t0)
        rate = meter.rate(now, used)
        cost = run_cost(self.recorder, sum(a.unpriced for a in rows),
                     sum(a.cost for a in rows)) if self.recorder is not None else None
        return {"in": tin, "out": tout, "rate": rate, "cost_usd": cost}

    # ---------------------------------------------------------------- view
    def render(self) -> Any:
        """The rich renderable of the current state."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        s = self.snapshot()
        h = s["handlers"]
        head = Text()
        head.append("cxpar dashboard", style="bold")
        head.append(f"  {s['elapsed_s']:.1f}s\n")
        head.append(f"handlers  active {h['active']}  completed {h['completed']}  ")
        head.append(f"failed {h['failed']}", style="red" if h["failed"] else "")
        head.append(f"  ·  tasks in flight {s['tasks']}")
        st = s["streams"]
        if st is not None:
            head.append(f"\nstreams   in flight {st['in_flight']}  done {st['done']}"
                        f"/{st['total']}  ")
            head.append(f"failed {st['failed']}", style="red" if st["failed"] else "")
            if st["eta_s"] is not None:
                head.append(f"  ·  ETA {st['eta_s']:.0f}s")
        if s.get("workers"):
            head.append("\nworkers   " + "  ".join(f"{k} {w['done']} ({w['rate']:.1f}/s)"
                                                  for k, w in s["workers"].items()))
        lim = s["limit"]
        if lim is not None:
            kind = "adaptive limit" if lim["adaptive"] else "limit"
            head.append(f"\n{kind}  {lim['active']}/{lim['limit']} running, "
                        f"{lim['queued']} queued ({lim['schedule']} order)")
        q = s["queue"]
        if q is not None:
            head.append(f"\nqueue wait  {q['streams']} streams waited, mean "
                        f"{q['mean_ms']:.0f} ms, longest {q['max_ms']:.0f} ms "
                        f"({q['max_stream']})")
        tok = s["tokens"]
        head.append(f"\ntokens    in {tok['in']}  out {tok['out']}  ·  {tok['rate']:.1f} "
                    f"tokens/s  ·  cost so far {fmt_usd(tok['cost_usd'])}")
        for key, a in s["adaptive"].items():
            head.append(f"\nadaptive limit {key}  {a['active']}/{a['limit']} running, "
                        f"{a['queued']} queued")
        table = Table(box=None, pad_edge=False, show_edge=False)
        for col in ("service", "calls", "failed", "calls/s", "p95 ms", "wait p95 ms",
                    "breaker"):
            table.add_column(col, justify="left" if col in ("service", "breaker") else "right")
        names = [sv["name"] for sv in s["services"]]
        names += [n for n in s["breakers"] if n not in names]
        by_name = {sv["name"]: sv for sv in s["services"]}
        for n in names:
            sv = by_name.get(n, {"calls": 0, "failures": 0, "rate": 0.0, "p95_ms": 0.0,
                                 "wait_p95_ms": 0.0})
            br = s["breakers"].get(n, "closed")
            table.add_row(n, str(sv["calls"]), str(sv["failures"]), f"{sv['rate']:.1f}",
                          f"{sv['p95_ms']:.1f}", f"{sv['wait_p95_ms']:.1f}",
                          Text(br, style={"open": "bold red", "half-open": "yellow"}
                               .get(br, "green")))
        parts: list[Any] = [head, table]
        if s["critical"]:
            steps = []
            total = 0.0
            for c in s["critical"]:
                ms = c["p95_ms"]
                steps.append(f"{c['service']} ({'–' if ms is None else f'{ms:.0f} ms'})")
                total += ms or 0.0
            parts.append(Text(f"critical path  {' → '.join(steps)}  ≈ {total:.0f} ms p95"))
        return Group(*parts)

    def __rich__(self) -> Any:
        try:
            return self.render()
        except RuntimeError:  # a container changed under us: skip this frame
            from rich.text import Text
            return Text("cxpar dashboard …")

    def live(self, console: Any) -> _Live:
        """A started/stopped live display on ``console`` (refreshes at 4 Hz)."""
        return _Live(self, console)


def console_writer(stream: Any) -> Any:
    """A rich console writing to ``stream`` (stderr)."""
    import sys

    from rich.console import Console

    return Console(file=stream, stderr=stream is sys.stderr)


class _Live:
    def __init__(self, monitor: Monitor, console: Any) -> None:
        from rich.live import Live

        self.console = console
        self.view = Live(monitor, console=console, refresh_per_second=4, transient=False,
                         redirect_stdout=False, redirect_stderr=False)

    def start(self) -> None:
        self.view.start()

    def stop(self) -> None:
        self.view.stop()
        if not self.console.is_terminal:
            self.console.line()

    def print(self, text: str) -> None:
        """Error reports above the live view."""
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    def write(self, text: str) -> int:  # a text stream for the runtime's error reports
        self.print(text)
        return len(text)

    def flush(self) -> None:
        pass
