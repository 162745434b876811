"""``--journal`` / ``--replay`` with ``--executor ray``: the driver owns the journal.

The SQLite journal stays one file written by one process, the driver's. A worker gets,
with each chunk, every call already recorded for that chunk's streams
(:meth:`Journal.calls_of`) and serves them from memory; a call it has to send is
committed by the driver before the program sees its answer, as locally: the worker's
:class:`RemoteJournal` queues the record, and the driver's :func:`pump` (one per worker)
takes the queued records with one Ray call (waiting up to :data:`TAKE_WAIT_S` in real
time for one), commits them together (one transaction) and
acknowledges them with its next call. A run killed at any moment has therefore paid
only for the calls in flight at the kill, and ``--resume`` serves every committed one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...journal.store import CallRecord, Recorded
from ..clock import VirtualEventLoop

__all__ = ["RemoteJournal", "pump"]

#: Seconds a worker's ``take`` waits for a record before returning none.
TAKE_WAIT_S = 0.5

_Key = tuple[str, bytes, int]


class RemoteJournal:
    """A worker's view of the driver's journal (what
    :class:`~cxpar.journal.provider.JournaledProvider` needs of a journal).

    Lives on the worker's stream loop; :meth:`take` is called there for the driver.
    """

    #: Commits go through the driver (never the synchronous ``record``).
    remote = True

    def __init__(self, path: str, *, write: bool) -> None:
        self.path = path
        self.write = write
        self._calls: dict[int, dict[_Key, tuple[str, str, float]]] = {}
        self._pending: list[tuple[int, CallRecord]] = []
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._next = 1
        #: Called (on the stream loop) when a record is queued: wakes the driver's take.
        self.notify: Callable[[], None] | None = None

    def preload(self, calls: Mapping[int, Mapping[_Key, tuple[str, str, float]]]) -> None:
        """The recorded calls of a chunk's streams (from the driver)."""
        for stream, rows in calls.items():
            self._calls[stream] = dict(rows)

    def lookup(self, stream: int, service: str, digest: bytes, occurrence: int,
               request: str) -> Recorded | None:
        row = self._calls.get(stream, {}).get((service, digest, occurrence))
        if row is None or row[0] != request:
            return None
        return Recorded(json.loads(row[1]), float(row[2]))

    def record(self, call: CallRecord) -> None:  # pragma: no cover - `remote` avoids it
        raise RuntimeError("a worker's journal commits through the driver")

    def record_soon(self, call: CallRecord) -> asyncio.Future[None]:
        """Queue ``call`` for the driver; the future is done once it is committed (on
        the virtual clock, time stands still until then)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        n = self._next
        self._next += 1
        self._pending.append((n, call))
        self._waiting[n] = fut
        if self.notify is not None:
            self.notify()
        if isinstance(loop, VirtualEventLoop):
            loop.hold()
            fut.add_done_callback(lambda _f: loop.release())
        return fut

    def settle(self, acked: Sequence[int], failed: str | None = None) -> None:
        """The driver committed the records ``acked`` (or could not: ``failed``, the
        calls then fail with it): their answers go on to the program."""
        from ...journal.schema import JournalError

        for n in acked:
            fut = self._waiting.pop(n, None)
            if fut is not None and not fut.done():
                if failed is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(JournalError(failed))

    def drain(self) -> list[tuple[int, CallRecord]]:
        """The records queued for the driver since the last drain."""
        out, self._pending = self._pending, []
        return out

    @property
    def queued(self) -> int:
        return len(self._pending)

    def stream_done(self, stream: int, failed: bool) -> None:
        self._calls.pop(stream, None)


async def pump(take: Any, journal: Any, alive: Any) -> None:
    """Driver side, for one worker: ``await take(acked, failed)`` (its
    ``journal_take`` over Ray: :meth:`RemoteJournal.settle`, then wait a little for and
    :meth:`RemoteJournal.drain`) returns records to commit; commit them in one
    transaction of ``journal`` and acknowledge them with the next ``take``, until
    ``alive()`` is false or the task is cancelled (an error from a dead worker: try
    again while it is alive, Ray restarts it)."""
    acked: list[int] = []
    failed: str | None = None
    while alive():
        try:
            got = await take(acked, failed)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - its worker died: its feeders handle it
            acked, failed = [], None  # a new process: nothing of the old one waits
            await asyncio.sleep(0.2)
            continue
        acked, failed = [n for n, _ in got], None
        if not got:
            continue
        futs = [journal.record_soon(rec) for _, rec in got]
        try:
            await asyncio.gather(*futs)
        except Exception as exc:  # noqa: BLE001 - JournalError: the calls fail there
            failed = str(exc)
