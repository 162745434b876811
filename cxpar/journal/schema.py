"""The journal's SQLite schema: versioned, migrated in order, opened safely.

A journal is an ordinary SQLite database (the standard library's :mod:`sqlite3`) marked
with :data:`APPLICATION_ID`. ``PRAGMA user_version`` is the number of migrations applied;
:data:`MIGRATIONS` lists them in order, so an older journal is brought up to date the
first time a newer cxpar writes to it, and a journal newer than this cxpar is refused.

Writers use WAL mode with ``synchronous=NORMAL``: every committed call survives the
process being killed at any instant (SIGKILL included; a transaction is either wholly in
the WAL or ignored), and a power loss can lose at most the last commits, never corrupt
the file. A busy timeout lets several processes share one journal (SQLite serialises
the writers).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["APPLICATION_ID", "BUSY_TIMEOUT_MS", "JournalError", "MIGRATIONS",
           "SCHEMA_VERSION", "connect"]

#: ``PRAGMA application_id`` of every cxpar journal ("CXjr").
APPLICATION_ID = 0x43586A72
#: How long a writer waits for another process's write transaction (ms).
BUSY_TIMEOUT_MS = 10_000

#: Each entry upgrades the schema by one version (``user_version`` = entries applied);
#: an entry is a sequence of SQL statements run in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: runs, calls (keyed by stream, service, request, occurrence), finished streams
    ("""
    CREATE TABLE runs (
        id            INTEGER PRIMARY KEY,
        started_at    REAL    NOT NULL,      -- unix time
        finished_at   REAL,
        status        TEXT    NOT NULL,      -- running, ok, failed or interrupted
        program       TEXT    NOT NULL,      -- the CX file as given
        source_hash   TEXT    NOT NULL,      -- sha256 of the CX source
        kind          TEXT    NOT NULL,      -- run, batch, repl or module
        provider      TEXT,                  -- e.g. sim, openai (never a key)
        cxpar_version TEXT    NOT NULL
    )""", """
    CREATE TABLE calls (
        id                INTEGER PRIMARY KEY,
        run_id            INTEGER NOT NULL REFERENCES runs(id),
        stream            INTEGER NOT NULL,  -- batch record index, -1 for a single run
        service           TEXT    NOT NULL,
        request_hash      BLOB    NOT NULL,  -- sha256(service, canonical request)[:16]
        occurrence        INTEGER NOT NULL,  -- n-th call of this request in the stream
        request           TEXT    NOT NULL,  -- the canonical request (JSON)
        answer            TEXT    NOT NULL,  -- the answer (JSON)
        endpoint          TEXT,              -- where it was answered (no user info, no key)
        model             TEXT,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        attempt           INTEGER NOT NULL,
        started_at        REAL    NOT NULL,  -- unix time
        duration_ms       REAL    NOT NULL,  -- on the run's clock (virtual or real)
        UNIQUE (stream, service, request_hash, occurrence)
    )""",
     """
    CREATE TABLE streams (
        stream      INTEGER PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        finished_at REAL    NOT NULL,
        failed      INTEGER NOT NULL
    )"""),
    # 2: the writer of each run, to tell a run still going from one killed (kill -9)
    ("ALTER TABLE runs ADD COLUMN pid INTEGER",  # the writer's process id
     "ALTER TABLE runs ADD COLUMN host TEXT"),   # the writer's host name
)
SCHEMA_VERSION = len(MIGRATIONS)


class JournalError(Exception):
    """A journal that cannot be used (exit code 2): names the path and the reason."""


def connect(path: str, *, write: bool) -> sqlite3.Connection:
    """Open the journal at ``path``: for writing (created and migrated) or read-only.

    Raises :class:`JournalError` for a missing journal (read-only), a file that is not
    an SQLite database or not a cxpar journal, one newer than this cxpar, and a journal
    that cannot be written (``write=True`` on a read-only file or directory).
    """
    if not path:
        raise JournalError("the journal path is empty (name an SQLite file, e.g. runs.db)")
    p = Path(path)
    if p.is_dir():
        raise JournalError(f"journal `{path}` is a directory")
    if p.exists() and not p.is_file():  # a FIFO would block SQLite's open forever
        raise JournalError(f"journal `{path}` is not a regular file (a journal is an "
                           "SQLite database file)")
    if not write and not p.exists():
        raise JournalError(f"no such journal: `{path}`")
    if write:
        _check_writable(p, path)
    try:
        if write:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        else:
            conn = _open_readonly(p)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        app, version, tables = _identify(conn)
    except sqlite3.DatabaseError as exc:
        raise _unusable(path, exc) from None
    fresh = version == 0 and not tables
    if not fresh and app != APPLICATION_ID:
        conn.close()
        raise JournalError(f"`{path}` is an SQLite database but not a cxpar journal")
    if version > SCHEMA_VERSION:
        conn.close()
        raise JournalError(f"journal `{path}` has schema version {version}; this cxpar "
                           f"reads versions up to {SCHEMA_VERSION} (upgrade cxpar)")
    if not write:
        if fresh:
            conn.close()
            raise JournalError(f"`{path}` is an empty journal (nothing was recorded)")
        if version < SCHEMA_VERSION:
            conn.close()  # an old journal: reopen for writing just to migrate it
            migrate_in_place(path)
            conn = _open_readonly(p)
        return conn
    try:
        _while_locked(lambda: _prepare(conn, version))
    except sqlite3.OperationalError as exc:
        conn.close()
        if _is_busy(exc):
            raise _unusable(path, exc) from None
        raise JournalError(f"cannot write journal `{path}`: {_reason(exc)}") from None
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(path, exc) from None
    return conn


def _is_busy(exc: sqlite3.DatabaseError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _unusable(path: str, exc: sqlite3.DatabaseError) -> JournalError:
    """The error for a journal SQLite refused: busy (another process holds a lock past
    the busy timeout) or not a cxpar journal at all."""
    if _is_busy(exc):
        return JournalError(
            f"journal `{path}` is locked by another process (waited "
            f"{BUSY_TIMEOUT_MS / 1000:g} s); try again when it has finished")
    return JournalError(f"`{path}` is not a cxpar journal ({_reason(exc)})")


def migrate_in_place(path: str) -> None:
    """Bring an older journal to :data:`SCHEMA_VERSION` (a no-op if it is current)."""
    connect(path, write=True).close()


def _prepare(conn: sqlite3.Connection, version: int) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    _migrate(conn, version)


def _while_locked(step: Callable[[], None]) -> None:
    """Run ``step``, again while another process holds a lock it needs (up to
    :data:`BUSY_TIMEOUT_MS`).

    Switching to WAL mode needs the file to itself for an instant, and SQLite reports
    that as "database is locked" at once instead of waiting like other statements do
    (e.g. while another writer is switching the file back to rollback mode on close).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _migrate(conn: sqlite3.Connection, version: int) -> None:
    if version >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        # another process may have migrated it while we waited for the lock
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for statements in MIGRATIONS[version:]:
            for stmt in statements:
                conn.execute(stmt)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _identify(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """``(application_id, user_version, number of tables)``, read in one statement (one
    snapshot: another process may be creating the schema at this moment)."""
    app, version, tables = conn.execute(
        "SELECT (SELECT application_id FROM pragma_application_id), "
        "(SELECT user_version FROM pragma_user_version), "
        "(SELECT count(*) FROM sqlite_master)").fetchone()
    return int(app), int(version), int(tables)


def _open_readonly(p: Path) -> sqlite3.Connection:
    uri = p.resolve().as_uri()
    try:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError as exc:
        # a WAL journal in a directory we cannot write (no -shm file can be made): read
        # the file as it is, unless its write-ahead log holds calls the file lacks
        wal = p.with_name(p.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise JournalError(
                f"cannot read journal `{p}` here: its write-ahead log (`{wal.name}`, left "
                f"by a run that was killed) needs a writable directory ({exc})") from None
        return sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None,
                               check_same_thread=False)


def _check_writable(p: Path, shown: str) -> None:
    if p.exists():
        if not _writable(p):
            raise JournalError(f"journal `{shown}` is read-only (use --replay to read it)")
    elif not p.resolve().parent.is_dir():
        raise JournalError(f"cannot create journal `{shown}`: no such directory "
                           f"`{p.resolve().parent}`")
    if not _writable(p.resolve().parent):
        raise JournalError(f"cannot write journal `{shown}`: its directory is read-only "
                           "(SQLite keeps a write-ahead log next to it)")


def _writable(p: Path) -> bool:
    """Writable by us, and meant to be: a file without any write bit counts as
    read-only even for root, who could write it anyway."""
    return os.access(p, os.W_OK) and bool(p.stat().st_mode & 0o222)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
