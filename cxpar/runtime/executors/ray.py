"""``--executor ray``: a batch run's streams on Ray async actors (issue 23).

The driver (this module, in the ``cxpar run`` process) alone reads the input and writes
the output: it hands records out in small chunks to :class:`~.ray_worker.StreamWorker`
actors and writes the result lines they return through the batch writer, so every
index is written once, ``--ordered`` and ``--resume`` work as with the local executor,
and Ctrl-C / SIGTERM stop the run the same way. Work is *pulled*: each worker has a
few chunk calls in flight and gets the next chunk only when one returns, so faster
workers take more records.

A worker that dies (its process killed, its node lost) loses only the chunks it had
not returned; their records go back to the front of the queue one by one and run
again on the workers still alive (Ray restarts a dead actor up to
:data:`MAX_RESTARTS` times). A record whose worker died :data:`MAX_ATTEMPTS` times
gets an error line instead of killing every worker in turn.

The run's recorder and meter stay the driver's: each returned chunk brings what its
worker recorded (merged into the recorder, spans moved onto the driver's clock) and its
meter's totals (added up; when the sum reaches a budget every worker is halted at once,
and the driver stops handing out records). With a budget the driver also asks every
worker for its totals each :data:`POLL_S` seconds.

``--max-concurrency N`` starts split into fixed shares (the total in flight never
exceeds ``N``); polled every :data:`POLL_S`, each worker says how many calls hold or
wait for its slots, and when some wait while another worker's slots are idle the driver
moves slots: first it shrinks the givers and waits until their calls in flight fit,
then it grows the takers (:meth:`RayExecutor._move_slots`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..batchfile import result_lines
from ..settings import RunSettings
from . import ExecutorError
from .ray_journal import pump
from .ray_worker import JOURNAL_COUNTS, ChunkResult, ProgramSource, StreamWorker

__all__ = ["MAX_ATTEMPTS", "MAX_RESTARTS", "RAY_MISSING", "RayExecutor", "chunk_size",
           "rebalance", "shares", "worker_shares"]

RAY_MISSING = ("--executor ray needs Ray, which is not installed: "
               "pip install 'cxpar[ray]'")
#: Times Ray restarts a worker actor whose process died.
MAX_RESTARTS = 3
#: Times a record may be lost with its worker before it gets an error line.
MAX_ATTEMPTS = 3
#: Seconds to wait for a TCP answer from ``--ray-address``.
PROBE_TIMEOUT_S = 5.0
#: Seconds to wait for the workers to start (placement, imports, compiling).
START_TIMEOUT_S = 180.0
#: Seconds between two reads of the workers' status (spending with a budget, demand for
#: ``--max-concurrency`` slots with several workers).
POLL_S = 0.1
#: Seconds at least between two moves of ``--max-concurrency`` slots.
REBALANCE_S = 0.3


def shares(total: int | None, parts: int) -> list[int | None]:
    """``total`` split into ``parts`` whole shares that differ by at most one (None:
    no limit, for every part)."""
    if total is None:
        return [None] * parts
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def worker_shares(settings: RunSettings, n: int, todo: int) -> list[RunSettings]:
    """The settings of each of ``n`` workers: the whole run's, with its share of every
    limit that is global — ``--max-concurrency``, ``--streams`` (at most the records
    left), the adaptive limit's ``initial`` and ``max``, the sim's ``capacity`` (each
    worker's sim models its share of the one endpoint), and each ``[endpoints.NAME]``'s
    ``rpm``, ``tpm`` and ``max_concurrency`` (at least 1 each)."""
    s = settings
    conc = shares(s.max_concurrency, n)
    streams = shares(min(s.streams, max(todo, 1)), n)
    initial = shares(s.limits.initial, n)
    top = shares(s.limits.max, n)
    out = []
    for i in range(n):
        low = s.limits.min
        limits = replace(s.limits, initial=max(low, initial[i] or low),
                         max=max(low, top[i] or low))
        capacity = {svc: cap / n for svc, cap in s.capacity.items()}
        endpoints = {name: replace(
            ep, rpm=ep.rpm / n if ep.rpm else ep.rpm, tpm=ep.tpm / n if ep.tpm else ep.tpm,
            max_concurrency=max(1, shares(ep.max_concurrency, n)[i] or 1)
            if ep.max_concurrency else ep.max_concurrency)
            for name, ep in s.endpoints.items()}
        out.append(s.replace(max_concurrency=conc[i], streams=max(1, streams[i] or 1),
                             limits=limits, capacity=capacity, endpoints=endpoints))
    return out


def rebalance(total: int, low: int, demands: Sequence[int]) -> list[int]:
    """``total`` (an adaptive limit's ``max``) split between workers by ``demands``
    (what each wants: its limit now, or its calls in flight and waiting if more): each gets at least ``low``, the rest in
    proportion to its demand (whole shares, largest remainders first); equal shares when
    nobody has any demand. The shares add up to ``total`` unless ``low`` each is more."""
    n = len(demands)
    if n == 0:
        return []
    spare = total - low * n
    if spare <= 0:
        return [low] * n
    weight = sum(demands)
    if weight <= 0:
        return [low + (s or 0) for s in shares(spare, n)]
    exact = [spare * d / weight for d in demands]
    out = [int(x) for x in exact]
    order = sorted(range(n), key=lambda i: (-(exact[i] - out[i]), i))
    for i in order[:spare - sum(out)]:
        out[i] += 1
    return [low + x for x in out]


def chunk_size(slots: int) -> int:
    """Records per chunk for a worker with ``slots`` streams: small (the unit of work
    stealing and of re-running after a crash), at most 8."""
    return max(1, min(8, slots // 4))


def _token_auth_env() -> None:
    """Joining a cluster by address: use its token when one is on this machine.

    (``ray start --head`` turns token authentication on and stores the token in
    ``~/.ray/auth_token``; ``ray.init(address="auto")`` finds it, an explicit address
    does not unless ``RAY_AUTH_MODE=token``.)"""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or \
            (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"
        if "ray" in sys.modules:  # imported already (the Python API): reload its config
            try:
                from ray._raylet import Config  # type: ignore[attr-defined]

                Config.initialize("")
            except Exception:  # noqa: BLE001 - best effort; ray.init then says why
                pass


def _probe(address: str) -> None:
    """Fail at once when nothing listens at the cluster's address (``ray.init`` would
    retry for minutes). ``auto`` is looked up as Ray does (``RAY_ADDRESS``, then the
    cluster last started on this machine)."""
    shown = address
    try:
        from ray._private.services import canonicalize_bootstrap_address

        resolved = canonicalize_bootstrap_address(address)
    except Exception:  # noqa: BLE001 - Ray's own lookup failed or moved: let ray.init say
        return
    if not resolved:
        raise ExecutorError(f"--ray-address {shown}: no Ray cluster was started on this "
                            "machine (start one with `ray start --head`)")
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        found = f" (`{address}` is {resolved})" if resolved != address else ""
        raise ExecutorError(f"--ray-address {shown}: no Ray cluster answers at "
                            f"{resolved}{found}: {exc}") from None


class _Worker:
    """The driver's view of one actor."""

    def __init__(self, name: str, handle: Any, slots: int) -> None:
        self.name = name
        self.handle = handle
        self.slots = slots
        self.chunk = chunk_size(slots)
        self.pid = 0
        self.alive = True
        self.failures = 0  # chunks lost in a row
        self.lost = 0  # chunks lost in all
        self.cpu_s = 0.0  # CPU seconds its process used (the last chunk's report)
        self.opened: dict[str, int] = {}  # its own breaker openings seen, by key
        self.told: dict[str, int] = {}  # trips sent to it, by key (a generation)
        self.cpu_base = 0.0  # ... before its first chunk (compiling, imports)
        self.host = ""
        #: Its share of ``--max-concurrency`` in force (None: no limit), the generation
        #: of that share, and the calls holding or waiting for its slots (last poll).
        self.slots_now: int | None = None
        self.slots_gen = 0
        self.want = 0
        #: Adaptive limits' ceilings: decided for it, and last sent to it (key → cap).
        self.caps: dict[str, int] = {}
        self.sent_caps: dict[str, int] = {}
        #: Seconds to add to its clock's times to get the driver's (real clock).
        self.offset = 0.0


class _Queue:
    """Records to hand out: first those lost with a dead worker (one per chunk), then
    the input's, in order. ``take`` waits while others are in flight and might come
    back; it returns ``[]`` only when every record is settled."""

    def __init__(self, records: Iterator[tuple[int, Any]]) -> None:
        self.records = records
        self.exhausted = False
        self.retry: deque[tuple[int, Any]] = deque()
        self.out = 0  # chunks in flight
        self.changed = asyncio.Event()

    async def take(self, n: int) -> list[tuple[int, Any]]:
        while True:
            if self.retry:
                self.out += 1
                return [self.retry.popleft()]
            if not self.exhausted:
                chunk = []
                for item in self.records:
                    chunk.append(item)
                    if len(chunk) >= n:
                        break
                else:
                    self.exhausted = True
                if chunk:
                    self.out += 1
                    return chunk
            if self.out == 0:
                return []
            self.changed.clear()
            await self.changed.wait()

    def settled(self) -> None:
        self.out -= 1
        self.changed.set()

    def lost(self, chunk: Sequence[tuple[int, Any]]) -> None:
        self.retry.extend(chunk)
        self.settled()


class RayExecutor:
    """Runs a batch's streams on Ray: ``start()`` (sync), ``await run(batch)``,
    ``close()``; see the module docstring."""

    def __init__(self, settings: RunSettings, source: ProgramSource, todo: int) -> None:
        self.settings = settings
        self.source = source
        self.todo = todo
        self.started_ray = False
        self.workers: list[_Worker] = []
        self.attempts: dict[int, int] = {}
        #: Seconds: Ray started or joined, workers ready, records done (``summary``).
        self.times: dict[str, float] = {}
        self.rerun = 0
        #: Breaker keys that opened on some worker: key → (generation, that worker).
        self.trips: dict[str, tuple[int, str]] = {}
        #: Each worker process's meter totals last added: (name, pid) → totals.
        self.spent: dict[tuple[str, int], dict[str, float]] = {}
        self.virtual = settings.clock == "virtual"
        #: Virtual clock: the latest worker time seen (the run's time on the driver).
        self.vnow = 0.0
        self.halted = False
        #: The driver's journal (``--journal``/``--replay``), and the streams that have
        #: calls committed to it by this run.
        self.journal: Any = None
        self.journaled_by: Any = None
        self.journaled: set[int] = set()
        #: Adaptive limits: key → worker → its calls in flight or waiting (last chunk).
        self.demand: dict[str, dict[str, int]] = {}
        self.halting: asyncio.Future[None] | None = None
        #: A move of ``--max-concurrency`` slots under way, and how many were made.
        self.moving: asyncio.Future[None] | None = None
        self.moves = 0

    # ---------------------------------------------------------------- start / close
    def start(self) -> None:
        """Start or join Ray and create the worker actors (not yet waiting for them)."""
        s = self.settings
        t0 = time.monotonic()
        if s.ray_address and s.ray_address != "auto":
            _token_auth_env()  # before Ray reads its configuration
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no reports sent home
        logging.getLogger("ray").setLevel(logging.ERROR)  # its notices are not ours to show
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        try:
            if s.ray_address:
                _probe(s.ray_address)
                ray.init(address=s.ray_address, **kwargs)
            else:  # "local": a new runtime, never a stale cluster found on the machine
                ray.init(address="local", **kwargs)
                self.started_ray = True
        except ExecutorError:
            raise
        except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, ...
            where = f"the Ray cluster at `{s.ray_address}`" if s.ray_address \
                else "a local Ray runtime"
            raise ExecutorError(f"cannot start or join {where}: "
                                f"{type(exc).__name__}: {_first_line(exc)}") from None
        self.times["ray_s"] = time.monotonic() - t0
        self._t = time.monotonic()
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        n = s.workers if s.workers is not None else max(1, int(cpus))
        n = max(1, min(n, self.todo))
        if s.max_concurrency is not None:
            n = min(n, s.max_concurrency)  # every worker needs at least one slot
        each = min(1.0, cpus / n) if cpus > 0 else 0.0
        actor = ray.remote(StreamWorker).options(
            num_cpus=each, max_restarts=MAX_RESTARTS, max_task_retries=0,
            max_concurrency=1000, scheduling_strategy="SPREAD")
        for i, worker_settings in enumerate(worker_shares(s, n, self.todo)):
            slots = worker_settings.streams
            name = f"w{i + 1}"
            handle = actor.remote(self.source, worker_settings, slots, name)
            self.workers.append(_Worker(name, handle, slots))
            self.workers[-1].slots_now = worker_settings.max_concurrency

    def close(self) -> None:
        """Stop the workers; shut Ray down (a cluster we joined keeps running)."""
        try:
            import ray
        except ImportError:  # pragma: no cover - start() needed it
            return
        for w in self.workers:
            try:
                ray.kill(w.handle, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if ray.is_initialized():
            ray.shutdown()

    def now(self, loop: asyncio.AbstractEventLoop) -> float:
        """The run's time on the driver: its real loop's, or with the virtual clock the
        latest time a worker's clock showed (every worker's starts at 0)."""
        return self.vnow if self.virtual else loop.time()

    # ---------------------------------------------------------------- the run
    async def run(self, batch: Any) -> None:
        """Hand out ``batch.todo()`` and write what comes back through ``batch``."""
        batch.main_task = asyncio.current_task()  # what SIGTERM cancels
        await self._ready()
        self.times["ready_s"] = time.monotonic() - self._t
        t_run = time.monotonic()
        batch.counts.workers.update({w.name: 0 for w in self.workers})
        queue = _Queue(batch.todo())
        feeders = []
        for w in self.workers:
            n = math.ceil(w.slots / w.chunk) + 1
            feeders += [asyncio.create_task(self._feed(w, queue, batch)) for _ in range(n)]
        slots_move = self.settings.max_concurrency is not None and len(self.workers) > 1
        if batch.shared.meter.budget.active or slots_move:
            feeders.append(asyncio.create_task(self._poll(batch, feeders[:])))
        pumps = self._journal_pumps(batch, feeders[:])
        try:
            await asyncio.gather(*feeders)
        finally:
            for f in feeders + pumps:
                f.cancel()
            if self.halting is not None:
                self.halting.cancel()
            if self.moving is not None:
                self.moving.cancel()
        self.times["run_s"] = time.monotonic() - t_run
        c = batch.counts
        left = c.total - c.skipped - c.done
        if left > 0:  # every worker is gone
            raise ExecutorError(f"every Ray worker died; {left} record(s) were not run",
                                exit_code=3)

    async def _ready(self) -> None:
        loop = asyncio.get_running_loop()

        async def ping(w: _Worker) -> None:
            try:
                t_sent = loop.time()
                info = await _await(w.handle.ping.remote())
                if not self.virtual:  # its clock's zero may differ (another node)
                    w.offset = (t_sent + loop.time()) / 2 - float(info.get("time", 0.0))
            except Exception as exc:  # noqa: BLE001 - its process died while starting
                raise ExecutorError(f"Ray worker {w.name} did not start: "
                                    f"{type(exc).__name__}: {_first_line(exc)}") from None
            if info.get("error"):
                raise ExecutorError(f"Ray worker {w.name} cannot run the program: "
                                    f"{info['error']}")
            w.pid = int(info["pid"])
            w.cpu_base = w.cpu_s = float(info.get("cpu_s", 0.0))
            w.host = str(info["host"])

        try:
            await asyncio.wait_for(asyncio.gather(*(ping(w) for w in self.workers)),
                                   START_TIMEOUT_S)
        except TimeoutError:
            raise ExecutorError(f"the Ray workers did not start within "
                                f"{START_TIMEOUT_S:g} s (does the cluster have room for "
                                f"{len(self.workers)} actors?)") from None

    async def _feed(self, w: _Worker, queue: _Queue, batch: Any) -> None:
        from ray.exceptions import ActorDiedError, RayActorError

        while w.alive:
            chunk = await queue.take(w.chunk)
            if not chunk:
                return
            if not w.alive:  # retired while this feeder waited: not an attempt
                queue.lost(chunk)
                return
            batch.counts.active += len(chunk)
            try:
                result: ChunkResult = await _await(w.handle.run_chunk.remote(
                    chunk, self._trips_for(w), batch.shared.meter.stop,
                    self._journaled(chunk), self._caps_for(w),
                    (w.slots_gen, w.slots_now) if w.slots_now is not None else None))
            except RayActorError as exc:
                batch.counts.active -= len(chunk)
                self._lost(w, chunk, queue, batch, permanent=isinstance(exc, ActorDiedError))
                if w.alive:  # Ray is restarting it: back off, then try it again
                    await asyncio.sleep(min(2.0, 0.1 * 2 ** min(w.failures, 5)))
                continue
            except Exception as exc:  # noqa: BLE001 - the worker itself failed
                raise ExecutorError(f"Ray worker {w.name} failed: {type(exc).__name__}: "
                                    f"{_first_line(exc)}", exit_code=3) from None
            w.failures = 0
            batch.counts.active -= len(chunk)
            self._write(result, batch)
            queue.settled()

    def _lost(self, w: _Worker, chunk: Sequence[tuple[int, Any]], queue: _Queue,
              batch: Any, *, permanent: bool) -> None:
        w.failures += 1  # in a row: only for backing off (each feeder counts)
        w.lost += 1
        self.rerun += len(chunk)
        if permanent:  # Ray has no restart left for it
            w.alive = False
        again = []
        for index, record in chunk:
            n = self.attempts[index] = self.attempts.get(index, 0) + 1
            if n >= MAX_ATTEMPTS:
                err = {"type": "worker", "message": f"the Ray worker running this record "
                       f"died {n} times (is the record crashing it?)"}
                batch.report(f"record {index}: error: {err['message']}\n")
                batch.finish(index, result_lines(index, (), err), True)
            else:
                again.append((index, record))
        queue.lost(again)
        if not any(x.alive for x in self.workers):
            queue.exhausted = True  # nobody left to run the rest

    def _rebalance(self) -> None:
        """Split each adaptive limit's ``max`` between the live workers by their
        latest demand (sent with their next chunk). A worker's demand is at least its
        limit, so a cap cuts a limit only when the workers together want more than
        ``max``."""
        cfg = self.settings.limits
        alive = [w for w in self.workers if w.alive]
        for key, by in self.demand.items():
            caps = rebalance(cfg.max, cfg.min, [by.get(w.name, 0) for w in alive])
            for w, cap in zip(alive, caps, strict=True):
                w.caps[key] = cap

    def _caps_for(self, w: _Worker) -> dict[str, int] | None:
        """The ceilings that changed for ``w`` since it was last told."""
        out = {k: v for k, v in w.caps.items() if w.sent_caps.get(k) != v}
        w.sent_caps.update(out)
        return out or None

    def _trips_for(self, w: _Worker) -> list[str]:
        """Breakers that opened on other workers since ``w`` was last told."""
        out = []
        for key, (gen, origin) in self.trips.items():
            if origin != w.name and w.told.get(key, 0) < gen:
                w.told[key] = gen
                out.append(key)
        return out

    def _saw_opened(self, w: _Worker, opened: dict[str, int]) -> None:
        """``w`` reports breakers its own calls opened: new openings become trips."""
        for key, n in opened.items():
            if n > w.opened.get(key, 0):
                w.opened[key] = n
                gen = self.trips.get(key, (0, ""))[0] + 1
                self.trips[key] = (gen, w.name)
                w.told[key] = gen

    def _journal_pumps(self, batch: Any, feeders: list[asyncio.Task[None]],
                       ) -> list[asyncio.Task[None]]:
        """With ``--journal``: one task per worker committing its calls (see
        :mod:`.ray_journal`)."""
        self.journaled_by = _journaled_provider(batch.shared.provider)
        journal = self.journal = getattr(self.journaled_by, "journal", None)
        if journal is None or self.settings.journal is None:
            return []

        def take(w: _Worker) -> Any:
            async def call(acked: list[int], failed: str | None) -> Any:
                got = await _await(w.handle.journal_take.remote(acked, failed))
                self.journaled.update(rec.stream for _, rec in got)
                return got
            return call

        def running(w: _Worker) -> Any:
            return lambda: w.alive and not all(f.done() for f in feeders)

        return [asyncio.create_task(pump(take(w), journal, running(w)))
                for w in self.workers]

    def _journaled(self, chunk: Sequence[tuple[int, Any]]) -> dict[int, Any] | None:
        """The calls the journal holds for ``chunk``'s streams (recorded by an earlier
        run, or by this one before a worker died), for the worker to serve."""
        journal = self.journal
        if journal is None:
            return None
        out = {}
        for index, _ in chunk:
            if index in journal.recorded_streams or index in self.journaled:
                out[index] = journal.calls_of(index)
        return out

    async def _poll(self, batch: Any, feeders: list[asyncio.Task[None]]) -> None:
        """Between chunks too: add up the workers' spending (with a budget) and move
        ``--max-concurrency`` slots to where calls wait (with several workers)."""
        loop = asyncio.get_running_loop()

        async def read(w: _Worker) -> None:
            try:
                status = await _await(w.handle.status.remote())
            except Exception:  # noqa: BLE001 - a dead worker: its feeders handle it
                return
            if status:
                self._account(w.name, int(status["pid"]), status["totals"], batch)
                w.want = int(status["want"])

        last = loop.time()
        while not all(f.done() for f in feeders):
            await asyncio.sleep(POLL_S)
            await asyncio.gather(*(read(w) for w in self.workers if w.alive))
            if self.moving is None and loop.time() - last >= REBALANCE_S and \
                    self.settings.max_concurrency is not None:
                target = self._slots_target()
                if target:
                    last = loop.time()
                    self.moving = asyncio.ensure_future(self._move_slots(target))
                    self.moving.add_done_callback(self._moved)

    def _slots_target(self) -> dict[_Worker, int] | None:
        """New ``--max-concurrency`` shares when calls wait on a worker while another
        has idle slots: in proportion to the calls holding or waiting (at least one
        each); None when nothing should move."""
        alive = [w for w in self.workers if w.alive and w.slots_now is not None]
        total = self.settings.max_concurrency
        if total is None or len(alive) < 2 or total < len(alive):
            return None
        waiting = any(w.want > (w.slots_now or 0) for w in alive)
        idle = any(w.want < (w.slots_now or 0) for w in alive)
        if not (waiting and idle):
            return None
        new = rebalance(total, 1, [w.want for w in alive])
        target = {w: n for w, n in zip(alive, new, strict=True) if n != w.slots_now}
        return target or None

    async def _move_slots(self, target: dict[_Worker, int]) -> None:
        """Shrink the givers and wait until their calls in flight fit their new share,
        then grow the takers: the shares in force never add up to more than ``N``. (A
        chunk sent meanwhile carries the worker's share as the driver has it, so a
        restarted worker starts with the right one.)"""
        async def tell(w: _Worker) -> None:
            w.slots_gen += 1
            w.slots_now = target[w]
            try:
                await _await(w.handle.set_slots.remote(w.slots_gen, target[w]))
            except Exception:  # noqa: BLE001 - it died: its calls ended with it
                pass

        await asyncio.gather(*(tell(w) for w in target if target[w] < (w.slots_now or 0)))
        await asyncio.gather(*(tell(w) for w in target if target[w] > (w.slots_now or 0)))
        self.moves += 1

    def _moved(self, fut: asyncio.Future[None]) -> None:
        self.moving = None

    def _account(self, name: str, pid: int, totals: dict[str, float], batch: Any) -> None:
        """A worker process's meter totals: add what is new; halt every worker when the
        run's budget is reached."""
        key = (name, pid)
        before = self.spent.get(key)
        if before is not None and all(v <= before.get(k, 0) for k, v in totals.items()):
            return  # nothing new (or an older reading than one already added)
        self.spent[key] = totals
        meter = batch.shared.meter
        meter.add_remote(totals, before)
        provider = self.journaled_by
        for k in JOURNAL_COUNTS:  # the journal's "answered from it / recorded" line
            if k in totals and provider is not None:
                setattr(provider, k, getattr(provider, k) + int(totals[k]) -
                        int((before or {}).get(k, 0)))
        if meter.stop is not None and not self.halted:
            self.halted = True
            self.halting = asyncio.ensure_future(self._halt_all(meter.stop))

    async def _halt_all(self, reason: str) -> None:
        """Stop every worker's new calls and records now (not only with its next chunk)."""
        refs = [w.handle.halt.remote(reason) for w in self.workers if w.alive]
        await asyncio.gather(*(_await(r) for r in refs), return_exceptions=True)

    def _write(self, result: ChunkResult, batch: Any) -> None:
        if result.prints:
            batch.stdout.write(result.prints)
        for text in result.reports:
            batch.report(text)
        for index, text, failed in result.lines:
            batch.finish(index, text, failed)
        offset = 0.0
        for key, n in result.demand.items():
            self.demand.setdefault(key, {})[result.worker] = n
        if result.demand:
            self._rebalance()
        for w in self.workers:
            if w.name == result.worker:
                w.cpu_s = max(w.cpu_s, result.cpu_s)
                self._saw_opened(w, result.opened)
                w.pid = result.pid or w.pid  # a restarted worker is a new process
                offset = w.offset
        if self.virtual:
            self.vnow = max(self.vnow, result.t_end)
        rec = batch.shared.recorder
        if rec is not None and result.recorded is not None:
            rec.absorb(result.recorded, offset)
        if result.spent:
            self._account(result.worker, result.pid, result.spent, batch)
        done = batch.counts.workers
        done[result.worker] = done.get(result.worker, 0) + len(result.lines)
        batch.update()

    def summary(self) -> str:
        """A line for ``--stats``: start-up and run time, records per worker, losses."""
        t = self.times
        hosts = len({w.host for w in self.workers if w.host})
        parts = [f"ray: {len(self.workers)} worker(s) on {hosts} node(s); "
                 f"{'started' if self.started_ray else 'joined'} Ray in "
                 f"{t.get('ray_s', 0):.2f} s, workers ready in {t.get('ready_s', 0):.2f} s, "
                 f"records in {t.get('run_s', 0):.2f} s"]
        run_s = t.get("run_s", 0.0)
        if run_s > 0:
            cpu = {w.name: w.cpu_s - w.cpu_base for w in self.workers}
            total = sum(cpu.values())
            each = ", ".join(f"{name} {c:.1f} s" for name, c in cpu.items())
            parts.append(f"worker CPU {total:.1f} s = {total / run_s / len(cpu):.0%} of "
                         f"{len(cpu)} core(s) ({each})")
        if self.moves:
            parts.append(f"--max-concurrency slots moved between workers {self.moves} "
                         f"time(s)")
        lost = sum(w.lost for w in self.workers)
        if lost:
            parts.append(f"{lost} chunk(s) lost with a worker, {self.rerun} record(s) "
                         "run again")
        return "; ".join(parts)



def _journaled_provider(provider: Any) -> Any:
    """The run's :class:`~cxpar.journal.provider.JournaledProvider` (``--journal`` /
    ``--replay``): ``provider`` itself or its endpoints' default; None without one."""
    from cxpar.journal.provider import JournaledProvider

    from ..endpoints import endpoints_of

    if isinstance(provider, JournaledProvider):
        return provider
    eps = endpoints_of(provider)
    default = eps.default_provider if eps is not None else None
    return default if isinstance(default, JournaledProvider) else None


async def _await(ref: Any) -> Any:
    return await asyncio.wrap_future(ref.future())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
