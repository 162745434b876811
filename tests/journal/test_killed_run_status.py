"""A journaled run killed with `kill -9` never ends its run: `cxpar journal` shows it as
`running` while its writer lives and `interrupted` once the writer is gone (the run
records its writer's pid and host); the next writer records it as `interrupted`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from cxpar.journal.liveness import HOST, run_status

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "batch_tickets.cx")
RECORDS = str(ROOT / "examples" / "batch_tickets.jsonl")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    return {**env, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "COLUMNS": "200"}


def cx(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=_env())


def _statuses(journal: Path, cwd: Path) -> list[str]:
    proc = cx("journal", str(journal), "--format", "json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return [r["status"] for r in json.loads(proc.stdout)["runs"]]


def _calls(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_killed_run_is_interrupted_not_running_forever(tmp_path: Path) -> None:
    journal = tmp_path / "j.db"
    writer = subprocess.Popen(
        [sys.executable, "-m", "cxpar", "run", EXAMPLE, "--input", RECORDS, "--streams", "1",
         "--output", str(tmp_path / "out.jsonl"), "--no-progress", "--journal", str(journal)],
        cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _calls(journal) < 1:  # the run is recorded and under way
            assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
            assert time.monotonic() < deadline, "the journaled run never recorded a call"
            time.sleep(0.05)
        assert _statuses(journal, tmp_path) == ["running"]
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
        if writer.stderr:
            writer.stderr.close()
    assert _statuses(journal, tmp_path) == ["interrupted"]
    table = cx("journal", str(journal), cwd=tmp_path)
    assert table.returncode == 0 and "interrupted" in table.stdout, table.stdout
    assert "running" not in table.stdout and "unfinished" not in table.stdout

    # the next run that writes the journal records the killed one as interrupted
    again = cx("run", "--clock", "virtual", EXAMPLE, "--input", RECORDS, "--no-progress",
               "--journal", str(journal), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _statuses(journal, tmp_path) == ["interrupted", "ok"]
    with sqlite3.connect(journal) as conn:
        rows = conn.execute("SELECT status, pid, host FROM runs ORDER BY id").fetchall()
    assert rows[0] == ("interrupted", writer.pid, HOST)


def test_a_run_that_cannot_be_told_is_unfinished() -> None:
    assert run_status("running", None, None) == "unfinished"          # an older journal
    assert run_status("running", os.getpid(), "another-host") == "unfinished"
    assert run_status("running", os.getpid(), HOST) == "running"
    assert run_status("ok", None, None) == "ok"
