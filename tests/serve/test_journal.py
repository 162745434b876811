"""`cxpar serve --journal` records every run's provider calls; `--replay` answers runs
from such a journal without a provider (each served run is one stream of the journal)."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import serving

PROGRAM = """
/// @external
on input.record (e) {
    var r = think { prompt: "Answer " + e.id, timeout: 3000 };
    var s = think { prompt: "Answer " + e.id, timeout: 3000 };
    emit output.record { id: e.id, first: r.result, second: s.result, errors: r._errors };
}
"""


def test_journal_then_replay(tmp_path: Path) -> None:
    program = tmp_path / "answer.cx"
    program.write_text(PROGRAM, encoding="utf-8")
    journal = tmp_path / "served.journal"
    with serving(program, "--journal", str(journal), "--latency", "think=20") as s:
        with s.client() as c:
            first = [c.post("/v1/runs", json={"id": f"t{i}"}).json() for i in range(3)]
            again = c.post("/v1/runs", json={"id": "t0"}).json()
        code = s.stop()
    assert code == 0
    assert [r["output"]["first"] for r in first] == [f"[think] Answer t{i}" for i in range(3)]
    assert again["output"] == first[0]["output"]
    # Calls recorded by this server are answered from the journal after a restart (as
    # `cxpar run --journal` resumes), not by this process: all 8 went to the provider.
    assert any("0 calls answered from it, 8 sent to the provider and recorded" in line
               for line in s.err_lines), s.err_lines

    # Replay: every call the runs make comes from the journal — the sim would fail them all.
    with serving(program, "--replay", str(journal), "--fail-rate", "1") as s:
        with s.client() as c:
            replayed = c.post("/v1/runs", json={"id": "t1"}).json()
            unknown = c.post("/v1/runs", json={"id": "new"}).json()
        assert s.stop() == 0
    assert replayed["output"] == first[1]["output"] and replayed["error"] is None
    # A request the journal does not hold fails (as data: `_errors` type not_recorded).
    assert unknown["output"]["first"] is None
    assert unknown["output"]["errors"]["result"]["type"] == "not_recorded"
    assert "is not recorded in journal" in json.dumps(unknown["output"])
    assert any("2 calls answered from it" in line and "2 not recorded" in line
               for line in s.err_lines), s.err_lines


def test_unusable_journal_is_a_usage_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    program = tmp_path / "answer.cx"
    program.write_text(PROGRAM, encoding="utf-8")
    missing = tmp_path / "nope.journal"
    proc = subprocess.run([sys.executable, "-m", "cxpar", "serve", str(program), "--port",
                           "0", "--replay", str(missing)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr
