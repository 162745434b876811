"""Opening journals: creation, versions, and every kind of file that is not one."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from cxpar.journal import Journal, JournalError
from cxpar.journal.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, connect


def one_run(path: Path) -> None:
    """A journal at ``path`` with one (empty) run in it."""
    j = Journal.open(str(path), write=True)
    j.begin_run(program="p.cx", source="", kind="run", provider="sim")
    j.close()


def test_a_new_journal_has_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    conn = connect(str(path), write=True)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == \
        len(MIGRATIONS)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "calls", "streams"} <= tables
    conn.close()


def test_an_empty_file_becomes_a_journal_when_written(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    path.write_bytes(b"")
    with pytest.raises(JournalError, match="empty journal"):
        connect(str(path), write=False)
    connect(str(path), write=True).close()
    connect(str(path), write=False).close()


def test_a_closed_journal_is_one_self_contained_file(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    one_run(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.db"]
    r = Journal.open(str(path), write=False)
    r.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.db"]


@pytest.mark.parametrize("content", [b"hello, world\n", b"\x00" * 5000,
                                     b"SQLite format 3\x00" + b"\xff" * 200])
def test_a_file_that_is_not_sqlite_is_refused_with_its_path(tmp_path: Path,
                                                           content: bytes) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    for write in (True, False):
        with pytest.raises(JournalError, match="not a cxpar journal") as info:
            Journal.open(str(path), write=write)
        assert str(path) in str(info.value)
    assert path.read_bytes() == content  # never touched


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="SQLite database but not a cxpar journal"):
        Journal.open(str(path), write=True)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    connect(str(path), write=True).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(JournalError, match="upgrade cxpar"):
        Journal.open(str(path), write=False)


def test_a_missing_journal_cannot_be_replayed(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such journal"):
        Journal.open(str(tmp_path / "nope.db"), write=False)
    with pytest.raises(JournalError, match="no such directory"):
        Journal.open(str(tmp_path / "nodir" / "j.db"), write=True)
    with pytest.raises(JournalError, match="is a directory"):
        Journal.open(str(tmp_path), write=True)


@pytest.mark.parametrize("what, message", [("file", "is read-only"),
                                           ("directory", "directory is read-only")])
def test_a_read_only_journal_cannot_be_written_but_can_be_replayed(
        tmp_path: Path, what: str, message: str) -> None:
    path = tmp_path / "ro" / "j.db"
    path.parent.mkdir()
    one_run(path)
    target = path if what == "file" else path.parent
    saved = target.stat().st_mode
    target.chmod(0o444 if what == "file" else 0o555)
    try:
        with pytest.raises(JournalError, match=message):
            Journal.open(str(path), write=True)
        r = Journal.open(str(path), write=False)  # replay still works
        assert r.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        r.close()
    finally:
        target.chmod(saved)


WRITER = """
import sys, time
from cxpar.journal import Journal
from cxpar.journal.store import CallRecord
j = Journal.open(sys.argv[1], write=True)
j.begin_run(program="p.cx", source="", kind="batch", provider="sim")
base = int(sys.argv[2])
for i in range(300):
    j.record(CallRecord(base + i, "think", b"h" * 16, 0, "{}", "1", 1, time.time(), 1.0))
j.end_run("ok")
j.close()
"""


def test_concurrent_writers_share_a_journal_safely(tmp_path: Path) -> None:
    """Three processes create and write one journal at once: WAL and the busy timeout
    serialise them (creating the schema and switching to WAL included)."""
    path = tmp_path / "j.db"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(base)], env=env,
                              stderr=subprocess.PIPE, text=True)
             for base in (0, 1000, 2000)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 900
    assert conn.execute("SELECT count(*), min(status) FROM runs").fetchone() == (3, "ok")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


KILLED_WRITER = """
import os, signal, sys, time
from cxpar.journal import Journal
from cxpar.journal.store import CallRecord
j = Journal.open(sys.argv[1], write=True)
j.begin_run(program="p.cx", source="", kind="run", provider="sim")
for i in range(40):
    j.record(CallRecord(-1, "think", bytes([i]) * 16, 0, "{}", "1", 1, time.time(), 1.0))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_writer_leaves_every_committed_call_readable(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    assert (tmp_path / "j.db-wal").stat().st_size > 0  # the calls are in the log only
    r = Journal.open(str(path), write=False)
    try:
        assert r.conn.execute("SELECT count(*) FROM calls").fetchone()[0] == 40
        assert r.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        r.close()
    w = Journal.open(str(path), write=True)  # the next writer recovers and continues
    w.begin_run(program="p.cx", source="", kind="run", provider="sim")
    w.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*), max(id) FROM runs").fetchone() == (2, 2)
    conn.close()
