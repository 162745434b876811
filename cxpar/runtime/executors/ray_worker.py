"""The worker side of ``--executor ray``: one async Ray actor per worker (issue 23).

A :class:`StreamWorker` compiles the program itself from its source text (nothing
compiled is pickled), builds its own provider and shared services (limiter, breakers,
stats) from the whole :class:`~cxpar.runtime.settings.RunSettings`, and runs streams
exactly as the local executor does (:meth:`cxpar.runtime.streams.Batch.stream`) on an
event loop of the run's clock (real or virtual) in a thread of the actor process.
:meth:`StreamWorker.run_chunk` takes a small chunk of ``(index, record)`` pairs from the
driver, runs them with at most ``slots`` streams in flight across chunks, and returns
their result lines; the driver alone writes them. With each chunk go back what the
worker recorded for ``--stats``/``--trace`` (its streams' spans and its aggregates, which
the driver merges into the run's recorder) and its meter's totals (which the driver adds
up against the run's budget; :meth:`StreamWorker.halt` stops a worker's calls when the
budget is reached).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..batchfile import result_lines
from ..breaker import OPEN
from ..clock import new_loop
from ..cost import BUDGET_ERROR
from ..run import gc_tuned
from ..settings import RunSettings
from ..streams import Batch, Progress, Shared
from ..tracing import Recorder, RecorderPart
from .ray_journal import TAKE_WAIT_S, RemoteJournal

__all__ = ["ChunkResult", "JOURNAL_COUNTS", "ProgramSource", "StreamWorker",
           "build_program"]

#: A worker's journal counts the driver adds up (``JournaledProvider`` attributes).
JOURNAL_COUNTS = ("served", "recorded", "not_recorded")


@dataclass(frozen=True)
class ProgramSource:
    """What a worker needs to compile the program: the source, not compiled code."""

    name: str
    text: str
    #: Plug-in service names the driver knew (``name → event stem``).
    services: dict[str, str] = field(default_factory=dict)
    #: The driver's working directory (``--provider MODULE:ATTR`` imports from it).
    cwd: str = ""


@dataclass
class ChunkResult:
    """One chunk's results: ``(index, lines, failed)`` per record, and what its streams
    printed (``print``) and reported (runtime errors, timeouts) meanwhile."""

    worker: str
    lines: list[tuple[int, str, bool]]
    prints: str = ""
    reports: list[str] = field(default_factory=list)
    #: CPU seconds the worker process has used so far (utilisation in ``--stats``).
    cpu_s: float = 0.0
    #: Breakers open now because of this worker's own calls: key → times they opened.
    opened: dict[str, int] = field(default_factory=dict)
    #: What the worker recorded since its last chunk returned (None: nothing recorded).
    recorded: RecorderPart | None = None
    #: The worker's clock (its stream loop's time) when the chunk returned.
    t_end: float = 0.0
    #: The worker process and its meter's totals so far (:meth:`Meter.totals`).
    pid: int = 0
    spent: dict[str, float] = field(default_factory=dict)
    #: Adaptive limits: key → what the worker wants there (its limit now, or the
    #: calls in flight and waiting if more), for rebalancing.
    demand: dict[str, int] = field(default_factory=dict)


def build_program(source: ProgramSource, settings: RunSettings) -> tuple[Any, Any, Any]:
    """Compile ``source`` here, as ``cxpar run`` does: ``(factory, spans, sources)``."""
    from cxpar.codegen.module import compile_program
    from cxpar.driver import front_end_source
    from cxpar.plugins import known_services, load_service_plugins, register_services
    from cxpar.span import SourceFile

    register_services(source.services)
    load_service_plugins()
    fe = front_end_source(SourceFile(source.name, source.text),
                          extra_services=known_services())
    if fe.compilation is None or fe.has_errors:
        first = next((d for d in fe.diagnostics if d.is_error), None)
        raise RuntimeError(f"the program does not compile here: "
                           f"{first.message if first else 'no compilation'}")
    if settings.backend == "llvm":
        from cxpar.codegen.llvm import backend

        compiled, program = backend.compile_native(fe.compilation, compile_program)
    else:
        compiled = compile_program(fe.compilation)
        program = compiled.program
    return program, compiled.spans, compiled.sources


class _WorkerBatch(Batch):
    """A batch whose finished records are kept for the driver instead of written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.finished: dict[int, tuple[str, bool]] = {}

    def finish(self, index: int, text: str, failed: bool) -> None:
        self.finished[index] = (text, failed)
        done = getattr(self.shared.provider, "stream_done", None)
        if done is not None:  # a journal: forget the stream's occurrences and calls
            done(index, failed)


class StreamWorker:
    """An async actor body (wrapped with ``ray.remote`` by the driver)."""

    def __init__(self, source: ProgramSource, settings: RunSettings, slots: int,
                 name: str) -> None:
        self.name = name
        self.slots_n = max(1, slots)
        self.setup_error: str | None = None
        try:
            self._setup(source, settings)
        except Exception as exc:  # noqa: BLE001 - reported by ping() to the driver
            self.setup_error = f"{type(exc).__name__}: {exc}"

    def _setup(self, source: ProgramSource, settings: RunSettings) -> None:
        if source.cwd and source.cwd not in sys.path:
            sys.path.append(source.cwd)
        factory, spans, sources = build_program(source, settings)
        from cxpar.plugins import make_provider

        provider = make_provider(settings)
        #: ``--journal``/``--replay``: the driver's journal, seen from here.
        self.journal: RemoteJournal | None = None
        self.journaled_by: Any = None
        self.woken: asyncio.Event | None = None
        path = settings.journal or settings.replay
        if path is not None:
            from cxpar.journal.provider import JournaledProvider

            self.journal = RemoteJournal(path, write=settings.journal is not None)
            provider = self.journaled_by = JournaledProvider(
                provider, self.journal, strict=settings.replay is not None)  # type: ignore[arg-type]
        keep = bool(settings.stats or settings.trace or settings.stats_json or settings.otel)
        recorder = Recorder(keep_spans=keep) if (keep or settings.dashboard) else None
        shared = Shared(settings, provider, recorder=recorder)
        if recorder is not None:
            recorder.content = settings.otel_content
        self.prints = io.StringIO()
        #: Breakers opened because another worker's opened: key → times.
        self.tripped: dict[str, int] = {}
        self.reports: list[str] = []
        #: Adaptive limits' ceilings from the driver: key → this worker's share.
        self.caps: dict[str, int] = {}
        #: The generation of the last ``--max-concurrency`` share the driver set.
        self.slots_gen = 0
        self.batch = _WorkerBatch(factory, shared, spans=spans, sources=sources,
                                  writer=None, counts=Progress(0, 0), done=set(),
                                  stdout=self.prints, report=self.reports.append,
                                  update=_noop)
        self.loop = new_loop(settings.clock, guard_s=settings.guard_s)
        self.batch.loop = self.loop
        if hasattr(self.loop, "on_stall"):
            self.loop.on_stall = self._on_stall
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,),
                                       name="cxpar-streams", daemon=True)
        self.thread.start()
        ready.wait()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.slots = asyncio.Semaphore(self.slots_n)
        ready.set()
        with gc_tuned():
            self.loop.run_forever()

    def _on_stall(self) -> None:
        if self.batch.active:  # streams in flight and virtual time stands still
            self.batch.on_stall()
        elif hasattr(self.loop, "_stall_reported"):  # idle between chunks: not a stall
            self.loop._stall_reported = False

    # ---------------------------------------------------------------- remote methods
    async def ping(self) -> dict[str, Any]:
        """Who this worker is (and why it cannot run, if it cannot), and its clock."""
        now = 0.0 if self.setup_error is not None else await self._on_loop(self._now)
        return {"name": self.name, "pid": os.getpid(), "host": socket.gethostname(),
                "error": self.setup_error, "cpu_s": time.process_time(), "time": now}

    async def journal_take(self, acked: Sequence[int], failed: str | None = None,
                           ) -> list[tuple[int, Any]]:
        """The driver committed ``acked`` (or could not: ``failed``); the calls to
        commit next, waiting up to :data:`TAKE_WAIT_S` (real time) for one."""
        journal = self.journal
        if self.setup_error is not None or journal is None:
            return []
        if self.woken is None:  # an event of this actor's own (real) loop
            here = asyncio.get_running_loop()
            woken = self.woken = asyncio.Event()

            def notify() -> None:
                here.call_soon_threadsafe(woken.set)

            journal.notify = notify
        self.woken.clear()
        self.loop.call_soon_threadsafe(journal.settle, acked, failed)
        if not journal.queued:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), TAKE_WAIT_S)
        return await self._on_loop(journal.drain)  # type: ignore[no-any-return]

    async def status(self) -> dict[str, Any]:
        """What the driver polls: the meter's totals (and the journal's counts) with
        this process's id, and the calls holding or waiting for a
        ``--max-concurrency`` slot here (``want``)."""
        if self.setup_error is not None:
            return {}
        return await self._on_loop(self._status)

    def _status(self) -> dict[str, Any]:
        limiter = self.batch.shared.limiter
        return {"totals": self._totals(), "pid": os.getpid(),
                "want": limiter.demand if limiter is not None else 0}

    async def set_slots(self, generation: int, slots: int) -> None:
        """A new share of ``--max-concurrency`` (``generation`` orders the driver's
        changes); returns once no more than ``slots`` calls hold one here, so the driver
        may then give the difference to another worker."""
        if self.setup_error is not None:
            return
        await self._on_loop(lambda: self._resize(generation, slots))
        limiter = self.batch.shared.limiter
        while limiter is not None and limiter.active > limiter.limit:
            await asyncio.sleep(0.005)  # real time: the calls holding slots end

    def _resize(self, generation: int, slots: int) -> None:
        limiter = self.batch.shared.limiter
        if limiter is not None and generation > self.slots_gen:
            self.slots_gen = generation
            limiter.resize(slots)

    async def halt(self, reason: str) -> None:
        """The run's budget was reached: no new provider call or record starts here."""
        if self.setup_error is None:
            await self._on_loop(lambda: self._halt(reason))

    async def _on_loop(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self.loop))

    def _now(self) -> float:
        return self.loop.time()

    def _totals(self) -> dict[str, float]:
        """The meter's totals and, with a journal, the calls served and recorded."""
        out = self.batch.shared.meter.totals()
        if self.journaled_by is not None:
            for key in JOURNAL_COUNTS:
                out[key] = getattr(self.journaled_by, key)
        return out

    def _halt(self, reason: str | None) -> None:
        meter = self.batch.shared.meter
        if reason and meter.stop is None:
            meter.stop = reason

    async def run_chunk(self, chunk: Sequence[tuple[int, Any]],
                        trips: Sequence[str] = (), stop: str | None = None,
                        journaled: dict[int, Any] | None = None,
                        caps: dict[str, int] | None = None,
                        slots: tuple[int, int] | None = None) -> ChunkResult:
        """Run ``chunk`` as streams; their result lines once all have finished.
        ``trips``: breaker keys that opened on other workers (opened here too);
        ``stop``: the run's budget was reached (as :meth:`halt`); ``journaled``: the
        calls the journal has for these streams (served from here); ``caps``: new
        ceilings of adaptive limits (key → this worker's share of ``max``); ``slots``:
        its share of ``--max-concurrency`` now, as ``(generation, slots)``."""
        if self.setup_error is not None:
            raise RuntimeError(self.setup_error)
        fut = asyncio.run_coroutine_threadsafe(
            self._chunk(chunk, trips, stop, journaled, caps, slots), self.loop)
        return await asyncio.wrap_future(fut)

    def stop(self) -> None:
        """End the stream loop's thread (a process that keeps the worker, e.g. a test)."""
        if self.setup_error is None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)

    # ---------------------------------------------------------------- on the stream loop
    def _trip(self, keys: Sequence[str]) -> None:
        shared = self.batch.shared
        now = self.loop.time()
        for key in keys:
            breaker = shared.resilience.breaker(key, shared.breakers)
            if breaker is not None and breaker.trip(now):
                self.tripped[key] = self.tripped.get(key, 0) + 1

    def _cap(self, caps: dict[str, int] | None) -> None:
        """Apply the driver's ceilings (kept for limits this worker creates later)."""
        if caps:
            self.caps.update(caps)
        now = self.loop.time()
        for key, cap in self.caps.items():
            lim = self.batch.shared.resilience.limiters.get(key)
            if lim is not None and lim.max_limit != cap:
                lim.set_max(cap, now)

    def _opened(self) -> dict[str, int]:
        """Breakers open now that opened through this worker's own calls."""
        out = {}
        for key, breaker in list(self.batch.shared.breakers.items()):
            own = breaker.opens - self.tripped.get(key, 0)
            if breaker.state == OPEN and own > 0:
                out[key] = own
        return out

    async def _chunk(self, chunk: Sequence[tuple[int, Any]], trips: Sequence[str] = (),
                     stop: str | None = None,
                     journaled: dict[int, Any] | None = None,
                     caps: dict[str, int] | None = None,
                     slots: tuple[int, int] | None = None) -> ChunkResult:
        if slots is not None:  # first: a restarted worker starts with its first share
            self._resize(*slots)
        self._trip(trips)
        self._halt(stop)
        self._cap(caps)
        if journaled and self.journal is not None:
            self.journal.preload(journaled)
        lines = list(await asyncio.gather(*(self._one(i, r) for i, r in chunk)))
        prints = self.prints.getvalue()
        if prints:
            self.prints.seek(0)
            self.prints.truncate()
        reports, self.reports[:] = list(self.reports), []
        shared = self.batch.shared
        rec = shared.recorder
        recorded = rec.drain({i + 2 for i, _ in chunk}) if rec is not None else None
        return ChunkResult(self.name, lines, prints, reports, time.process_time(),
                           self._opened(), recorded, self.loop.time(), os.getpid(),
                           self._totals(),
                           {key: max(lim.limit, lim.demand)
                            for key, lim in shared.resilience.limiters.items()})

    async def _one(self, index: int, record: Any) -> tuple[int, str, bool]:
        async with self.slots:
            meter = self.batch.shared.meter
            if meter.stop is not None:  # as the local batch: the record is not started
                meter.stopped_records += 1
                err = {"type": BUDGET_ERROR, "message": meter.stop}
                return index, result_lines(index, (), err), True
            try:
                await self.batch.stream(index, record)
            except Exception as exc:  # noqa: BLE001 - one record's internal error
                err = {"type": "internal", "message": f"{type(exc).__name__}: {exc}"}
                self.batch.finished.pop(index, None)
                return index, result_lines(index, (), err), True
        text, failed = self.batch.finished.pop(index)
        return index, text, failed


def _noop() -> None:
    pass
