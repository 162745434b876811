"""A journal of provider calls: runs, calls and finished streams in one SQLite file."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from cxpar import __version__

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


_LOOKUP = ("SELECT answer, duration_ms, request FROM calls WHERE stream = ? AND service = ? "
           "AND request_hash = ? AND occurrence = ?")
_INSERT = ("INSERT OR IGNORE INTO calls (run_id, stream, service, request_hash, occurrence, "
           "request, answer, endpoint, model, prompt_tokens, completion_tokens, attempt, "
           "started_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class Journal:
    """An open journal: :meth:`open` it, :meth:`begin_run`, look up and record calls.

    Opened for writing (``--journal``) every :meth:`record` is its own committed
    transaction, done before the answer is handed to the program; opened read-only
    (``--replay``, ``cxpar journal``) nothing is ever written.
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
                cur = self.conn.execute(
                    "INSERT INTO runs (started_at, status, program, source_hash, kind, "
                    "provider, cxpar_version) VALUES (?, 'running', ?, ?, ?, ?, ?)",
                    (time.time(), program, digest, kind, provider, __version__))
                self.run_id = cur.lastrowid
        except sqlite3.Error as exc:
            raise JournalError(f"cannot use journal `{self.path}`: {exc}") from None
        if known[0] and not known[1]:
            warnings.append(
                f"journal `{self.path}` was recorded for another program (or another "
                f"version of `{program}`); only calls with identical requests are replayed")
        return warnings

    def end_run(self, status: str) -> None:
        """Mark the current run finished (``ok``, ``failed`` or ``interrupted``)."""
        if self.write and self.run_id is not None:
            self._execute("UPDATE runs SET finished_at = ?, status = ? WHERE id = ?",
                          (time.time(), status, self.run_id))

    # ------------------------------------------------------------ calls
    def lookup(self, stream: int, service: str, digest: bytes, occurrence: int,
               request: str) -> Recorded | None:
        """The recorded answer of this call, or None."""
        if stream not in self.recorded_streams:
            return None
        row = self.conn.execute(_LOOKUP, (stream, service, digest, occurrence)).fetchone()
        if row is None or row[2] != request:
            return None
        return Recorded(json.loads(row[0]), float(row[1]))

    def record(self, call: CallRecord) -> None:
        """Commit one completed call (its own transaction)."""
        self._execute(_INSERT, (
            self.run_id, call.stream, call.service, call.digest, call.occurrence,
            call.request, call.answer, call.endpoint, call.model, call.prompt_tokens,
            call.completion_tokens, call.attempt, call.started_at, call.duration_ms))

    def stream_done(self, stream: int, failed: bool) -> None:
        """A batch stream's result lines are written: remember it as done."""
        if self.write and self.run_id is not None:
            self._execute("INSERT OR REPLACE INTO streams (stream, run_id, finished_at, "
                          "failed) VALUES (?, ?, ?, ?)",
                          (stream, self.run_id, time.time(), int(failed)))

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self.conn.execute(sql, args)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write journal `{self.path}`: {exc}") from None

    def close(self) -> None:
        """Close the connection.

        The last writer to leave folds the write-ahead log back into the file
        (rollback-journal mode), so a finished journal is one self-contained file that
        can be copied, committed and replayed from a read-only place.
        """
        try:
            if self.write:
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self.conn.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.Error:
            pass  # another process still has it open: it stays in WAL mode
        self.conn.close()
