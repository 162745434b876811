"""A journal of provider calls: runs, calls and finished streams in one SQLite file.

Writes are committed one of two ways, both before the answer reaches the program:

- :meth:`Journal.record`: a transaction of its own, on the caller's thread (the virtual
  clock: a journaled run then orders its events exactly as a plain run does);
- :meth:`Journal.record_soon`: queued, and committed together with every other call
  that completed in the same turn of the event loop (group commit: one transaction per
  turn, scheduled with ``call_soon``); the caller awaits a future that is resolved once
  its call is committed (the real clock, where answers arrive in bursts).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from cxpar import __version__

from .liveness import HOST, run_status
from .schema import JournalError, connect

__all__ = ["CallRecord", "Journal", "Recorded", "source_hash"]


def source_hash(source: str) -> str:
    """The hash a run records for its program (sha256 of the CX source)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Recorded:
    """A recorded answer, as the journal serves it."""

    answer: Any
    duration_ms: float


@dataclass(slots=True)
class CallRecord:
    """One completed provider call, as the journal records it."""

    stream: int
    service: str
    digest: bytes
    occurrence: int
    request: str
    answer: str
    attempt: int
    started_at: float
    duration_ms: float
    endpoint: str | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


_STREAM_CALLS = ("SELECT service, request_hash, occurrence, request, answer, duration_ms "
                 "FROM calls WHERE stream = ?")
_INSERT = ("INSERT OR IGNORE INTO calls (run_id, stream, service, request_hash, occurrence, "
           "request, answer, endpoint, model, prompt_tokens, completion_tokens, attempt, "
           "started_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_STREAM_DONE = ("INSERT OR REPLACE INTO streams (stream, run_id, finished_at, failed) "
                "VALUES (?, ?, ?, ?)")

_Key = tuple[str, bytes, int]


class Journal:
    """An open journal: :meth:`open` it, :meth:`begin_run`, look up and record calls.

    Opened for writing (``--journal``) every recorded call is committed before the
    program sees its answer; opened read-only (``--replay``, ``cxpar journal``) nothing
    is ever written.
    """

    def __init__(self, conn: sqlite3.Connection, path: str, *, write: bool) -> None:
        self.conn = conn
        self.path = path
        self.write = write
        self.run_id: int | None = None
        #: Streams that had recorded calls when the journal was opened: a call of any
        #: other stream cannot be in it, so no lookup is needed.
        self.recorded_streams: set[int] = {
            row[0] for row in conn.execute("SELECT DISTINCT stream FROM calls")}
        #: The recorded calls of the streams running now, loaded at their first lookup.
        self._loaded: dict[int, dict[_Key, tuple[str, str, float]]] = {}
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []

    @classmethod
    def open(cls, path: str, *, write: bool) -> Journal:
        """Open (for writing: create) the journal at ``path``; :class:`JournalError` if
        it cannot be used."""
        conn = connect(path, write=write)
        try:
            return cls(conn, path, write=write)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise JournalError(f"`{path}` is not a usable cxpar journal ({exc})") from None

    # ------------------------------------------------------------ runs
    def begin_run(self, *, program: str, source: str, kind: str,
                  provider: str | None) -> list[str]:
        """Start a run (recorded when writing); warnings for the user (another program)."""
        digest = source_hash(source)
        warnings = []
        try:
            known = self.conn.execute("SELECT count(*), sum(source_hash = ?) FROM runs",
                                      (digest,)).fetchone()
            if self.write:
                self._mark_interrupted()
                cur = self.conn.execute(
                    "INSERT INTO runs (started_at, status, program, source_hash, kind, "
                    "provider, cxpar_version, pid, host) "
                    "VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                    (time.time(), program, digest, kind, provider, __version__,
                     os.getpid(), HOST))
                self.run_id = cur.lastrowid
        except sqlite3.Error as exc:
            raise JournalError(f"cannot use journal `{self.path}`: {exc}") from None
        if known[0] and not known[1] and kind != "repl":
            warnings.append(
                f"journal `{self.path}` was recorded for another program (or another "
                f"version of `{program}`); only calls with identical requests are replayed")
        return warnings

    def _mark_interrupted(self) -> None:
        """Record as ``interrupted`` the runs of this host whose writer is gone."""
        rows = self.conn.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (HOST,))
        gone = [(r[0],) for r in rows if run_status("running", r[1], HOST) == "interrupted"]
        if gone:
            self.conn.executemany(
                "UPDATE runs SET status = 'interrupted' WHERE id = ? AND status = 'running'",
                gone)

    def end_run(self, status: str) -> None:
        """Mark the current run finished (``ok``, ``failed`` or ``interrupted``)."""
        self._drain()
        if self.write and self.run_id is not None:
            self._execute("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?",
                          (time.time(), status, self.run_id))

    # ------------------------------------------------------------ calls
    def lookup(self, stream: int, service: str, digest: bytes, occurrence: int,
               request: str) -> Recorded | None:
        """The recorded answer of this call, or None."""
        if stream not in self.recorded_streams:
            return None
        calls = self._loaded.get(stream)
        if calls is None:
            calls = self._loaded[stream] = self.calls_of(stream)
        row = calls.get((service, digest, occurrence))
        if row is None or row[0] != request:
            return None
        return Recorded(json.loads(row[1]), float(row[2]))

    def calls_of(self, stream: int) -> dict[_Key, tuple[str, str, float]]:
        """Every call recorded for ``stream``: ``(service, request hash, occurrence) →
        (request, answer JSON, duration ms)`` (empty when it has none)."""
        return {(r[0], r[1], r[2]): (r[3], r[4], r[5])
                for r in self.conn.execute(_STREAM_CALLS, (stream,))}

    def record(self, call: CallRecord) -> None:
        """Commit one completed call now (its own transaction)."""
        self._execute(_INSERT, self._row(call))

    def record_soon(self, call: CallRecord) -> asyncio.Future[None]:
        """Queue one completed call; it is committed with the others queued in this turn
        of the event loop. The future is done once it is committed (JournalError if that
        failed)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((self._row(call), fut))
        return fut

    def _flush(self, settle: bool = True) -> None:
        batch, self._pending = self._pending, []
        error: JournalError | None = None
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(_INSERT, [row for row, _f in batch])
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = JournalError(f"cannot write journal `{self.path}`: {exc}")
        if not settle:
            return
        for _row, fut in batch:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)

    def stream_done(self, stream: int, failed: bool) -> None:
        """A batch stream's result lines are written: remember it as done."""
        self._loaded.pop(stream, None)
        if not (self.write and self.run_id is not None):
            return
        self._execute(_STREAM_DONE, (stream, self.run_id, time.time(), int(failed)))

    def _row(self, c: CallRecord) -> tuple[Any, ...]:
        return (self.run_id, c.stream, c.service, c.digest, c.occurrence, c.request,
                c.answer, c.endpoint, c.model, c.prompt_tokens, c.completion_tokens,
                c.attempt, c.started_at, c.duration_ms)

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write journal `{self.path}`: {exc}") from None

    def _drain(self) -> None:
        """Commit what is still queued (the loop stopped before its turn ended)."""
        if self._pending:
            self._flush(settle=False)  # their loop has stopped: nobody awaits them

    def close(self) -> None:
        """Commit what is queued and close.

        The last writer to leave folds the write-ahead log back into the file
        (rollback-journal mode), so a finished journal is one self-contained file that
        can be copied, committed and replayed from a read-only place.
        """
        self._drain()
        try:
            if self.write:
                self.conn.execute("PRAGMA busy_timeout = 0")  # never wait for others here
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.conn.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error:
            pass  # another process still has it open: it stays in WAL mode
        self.conn.close()
