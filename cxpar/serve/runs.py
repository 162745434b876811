"""The server's runs: each started as a task over the Python API, with its live events
kept for ``/v1/runs/{id}/events`` subscribers and its result for ``GET /v1/runs/{id}``."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from cxpar import Program, RunResult, RunSettings, Runtime

__all__ = ["Run", "Runs"]

#: Events kept per run for late subscribers (the rest are counted, not kept).
MAX_EVENTS = 5000


@dataclass(eq=False)
class Run:
    """One run the server started."""

    id: str
    record: Any
    created: float = field(default_factory=time.time)
    status: str = "running"  # running → ok | failed | cancelled
    result: RunResult | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    calls: int = 0
    task: asyncio.Task[RunResult] | None = None
    _waiters: list[asyncio.Event] = field(default_factory=list)

    def add(self, event: dict[str, Any]) -> None:
        """Keep one live event and wake the subscribers."""
        if event["type"] == "call.start":
            self.calls += 1
        if len(self.events) < MAX_EVENTS or event["type"] == "run.end":
            self.events.append(event)
        else:
            self.dropped += 1
        for w in self._waiters:
            w.set()

    @property
    def done(self) -> bool:
        return self.status != "running"

    def summary(self) -> dict[str, Any]:
        """The run list's row: status, duration, errors, calls, cost (when known)."""
        res = self.result
        return {"id": self.id, "status": self.status, "created": self.created,
                "duration_ms": res.duration_ms if res else None,
                "calls": self.calls, "cost_usd": _cost(res),
                "errors": len(res.errors) if res else 0,
                "error": res.error if res else None}

    def to_dict(self) -> dict[str, Any]:
        """``GET /v1/runs/{id}``: the summary, and the result once the run is done."""
        out = self.summary()
        if self.result is not None:
            out.update(self.result.to_dict())
        out["status"] = self.status
        return out

    async def follow(self, stop: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
        """Every event so far, then live ones until the run ends (or ``stop`` is set)."""
        sent = 0
        wake = asyncio.Event()
        self._waiters.append(wake)
        try:
            while True:
                while sent < len(self.events):
                    sent += 1
                    yield self.events[sent - 1]
                if self.done or stop.is_set():
                    return
                wake.clear()
                stopper = asyncio.ensure_future(stop.wait())
                waiter = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait({stopper, waiter}, timeout=15,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    stopper.cancel()
                    waiter.cancel()
                if not wake.is_set() and not stop.is_set():
                    yield {"type": "ping"}
        finally:
            self._waiters.remove(wake)


def _cost(res: RunResult | None) -> float | None:
    if res is None:
        return None
    total = res.stats.get("total", {}).get("cost_usd")  # the --stats-json document
    return float(total) if isinstance(total, (int, float)) else None


class Runs:
    """Every run of one server: start, look up, cancel on shutdown (keeps the last
    ``keep`` finished runs)."""

    def __init__(self, program: Program, settings: RunSettings, *, provider: Any = None,
                 keep: int = 1000, on_done: Callable[[Run], None] | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.program = program
        self.settings = settings
        self.provider = provider
        self.keep = keep
        self.on_done = on_done
        self.on_event = on_event
        self.runs: OrderedDict[str, Run] = OrderedDict()
        #: The session every run shares (provider, limits, breakers, journal).
        self.session = Runtime(settings, provider=provider, kind="serve")
        #: Set when the server begins to shut down: no new runs, subscribers stop.
        self.closing = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None

    def start_session(self) -> None:
        """Note the server's loop (the session binds to it on the first run)."""
        self.loop = asyncio.get_running_loop()

    @property
    def active(self) -> int:
        return sum(1 for r in self.runs.values() if not r.done)

    def start(self, record: Any) -> Run:
        """Start one run of ``record``; it runs on as a task of its own."""
        session = self.session
        run = Run(session.next_id(), record)
        self.runs[run.id] = run
        self._trim()

        def listen(event: dict[str, Any]) -> None:
            run.add(event)
            if self.on_event is not None:
                self.on_event(event)

        run.task = asyncio.get_running_loop().create_task(
            self.program.run(record, runtime=session, listener=listen, run_id=run.id))
        run.task.add_done_callback(lambda t: self._finished(run, t))
        return run

    def _finished(self, run: Run, task: asyncio.Task[RunResult]) -> None:
        if task.cancelled():
            err = {"type": "cancelled", "message": "the server shut down before the run "
                                                    "finished"}
            run.result = RunResult(id=run.id, errors=[err])
            run.status = "cancelled"
        else:
            exc = task.exception()
            if exc is not None:  # never expected: the API reports errors as data
                err = {"type": "internal", "message": f"{type(exc).__name__}: {exc}"}
                run.result = RunResult(id=run.id, errors=[err])
            else:
                run.result = task.result()
            run.status = "ok" if run.result.ok else "failed"
        if not run.events or run.events[-1]["type"] != "run.end":
            run.add({"type": "run.end", "id": run.id, "ok": False,
                     "duration_ms": run.result.duration_ms, "error": run.result.error,
                     "t_ms": run.result.duration_ms})
        else:
            run.add({"type": "status", "status": run.status})
        if self.on_done is not None:
            self.on_done(run)

    async def wait(self, run: Run) -> None:
        """Until ``run`` is done (cancellation of the waiter leaves the run running)."""
        if run.task is not None and not run.task.done():
            await asyncio.wait({run.task})

    def _trim(self) -> None:
        if len(self.runs) <= self.keep:
            return
        for rid in [rid for rid, r in self.runs.items() if r.done]:
            if len(self.runs) <= self.keep:
                break
            del self.runs[rid]

    async def shutdown(self, grace_s: float) -> None:
        """Stop taking runs; give those in flight ``grace_s`` seconds, then cancel them."""
        self.closing.set()
        tasks = {r.task for r in self.runs.values() if r.task is not None and not r.done}
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace_s)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
        await self.session.aclose()
