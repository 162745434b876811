"""The journal through the real CLI: run, replay, bad journals, cxpar.toml, the
standalone module, the REPL and `cxpar journal`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """\
var a = think { prompt: "alpha", side: side.task };
var b = infer { prompt: "beta " + a.result };
print(a.result, a.side, b.result, now());
on side.task (event) {
    var s = is { prompt: "side of " + event.prompt };
    return s.result;
}
"""


def cx(*args: str, cwd: Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd, env=env,
                          input=input, capture_output=True, text=True, encoding="utf-8",
                          timeout=120)


def calls(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    finally:
        conn.close()


def test_journal_then_replay_prints_the_same(tmp_path: Path) -> None:
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    first = cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert calls(tmp_path / "j.db") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["j.db", "p.cx"]  # one file
    again = cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx", cwd=tmp_path)
    replay = cx("run", "--clock", "virtual", "--replay", "j.db", "p.cx", cwd=tmp_path)
    assert first.stdout == again.stdout == replay.stdout
    assert replay.stderr == ""
    assert calls(tmp_path / "j.db") == 3
    stats = json.loads(cx("journal", "stats", "j.db", "--format", "json",
                          cwd=tmp_path).stdout)
    assert stats["calls"] == 3 and [r["status"] for r in stats["runs"]] == ["ok", "ok"]
    assert {s["service"]: s["calls"] for s in stats["services"]} == \
        {"think": 1, "infer": 1, "is": 1}


def test_replay_of_a_changed_program_warns_and_fails_only_new_calls(tmp_path: Path) -> None:
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    assert cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx",
              cwd=tmp_path).returncode == 0
    changed = PROGRAM.replace('"beta "', '"gamma "') + "print(b._errors.result.type);\n"
    (tmp_path / "p.cx").write_text(changed, encoding="utf-8")
    r = cx("run", "--clock", "virtual", "--replay", "j.db", "p.cx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "not_recorded"
    assert "recorded for another program" in r.stderr
    assert "1 provider call was not in journal `j.db`" in r.stderr
    assert r.stdout.startswith("[think] alpha false null 800\n")  # the others replayed


def test_bad_journals_are_usage_errors_naming_the_path(tmp_path: Path) -> None:
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a database\n", encoding="utf-8")
    for flag in ("--journal", "--replay"):
        r = cx("run", "--clock", "virtual", flag, "notes.txt", "p.cx", cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert "`notes.txt` is not a cxpar journal" in r.stderr
        assert r.stdout == ""
    r = cx("run", "--clock", "virtual", "--replay", "missing.db", "p.cx", cwd=tmp_path)
    assert r.returncode == 2 and "no such journal: `missing.db`" in r.stderr
    assert cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx",
              cwd=tmp_path).returncode == 0
    (tmp_path / "j.db").chmod(0o444)
    try:
        r = cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx", cwd=tmp_path)
        assert r.returncode == 2 and "journal `j.db` is read-only" in r.stderr
        assert cx("run", "--clock", "virtual", "--replay", "j.db", "p.cx",
                  cwd=tmp_path).returncode == 0
    finally:
        (tmp_path / "j.db").chmod(0o644)
    r = cx("run", "--clock", "virtual", "--journal", "j.db", "--replay", "j.db", "p.cx",
           cwd=tmp_path)
    assert r.returncode == 2 and "cannot be combined" in r.stderr


def test_journal_from_cxpar_toml_is_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()  # the project root: the config search stops here
    (tmp_path / "cxpar.toml").write_text('[run]\nclock = "virtual"\njournal = "runs/j.db"\n',
                                         encoding="utf-8")
    (tmp_path / "runs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "p.cx").write_text(PROGRAM, encoding="utf-8")
    r = cx("run", "p.cx", cwd=tmp_path / "src")
    assert r.returncode == 0, r.stderr
    assert calls(tmp_path / "runs" / "j.db") == 3


def test_the_compiled_module_records_and_replays(tmp_path: Path) -> None:
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    assert cx("compile", "p.cx", "-o", "out.py", cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)

    def module(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "out.py", "--clock", "virtual", *args],
                              cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    first = module("--journal", "m.db")
    assert first.returncode == 0, first.stderr
    replay = module("--replay", "m.db")
    assert replay.stdout == first.stdout and replay.returncode == 0
    assert calls(tmp_path / "m.db") == 3
    bad = module("--replay", "nope.db")
    assert bad.returncode == 2 and "no such journal: `nope.db`" in bad.stderr


def test_the_repl_journal_command(tmp_path: Path) -> None:
    entries = ':journal r.db\nvar r = think { prompt: "hi" };\nprint(r.result);\n:journal\n'
    r = cx("repl", "--clock", "virtual", cwd=tmp_path, input=entries)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "journal: r.db (provider calls are recorded, and served when already recorded)",
        "[think] hi", "journal: r.db (0 served, 1 recorded, 0 not recorded)"]
    replay = cx("repl", "--clock", "virtual", "--replay", "r.db", cwd=tmp_path,
                input='var r = think { prompt: "hi" };\nprint(r.result);\n'
                      'var q = think { prompt: "new" };\nprint(q._errors.result.type);\n')
    assert replay.stdout.splitlines() == ["[think] hi", "not_recorded"]


def test_cxpar_journal_show_and_stats(tmp_path: Path) -> None:
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    assert cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx",
              cwd=tmp_path).returncode == 0
    text = cx("journal", "j.db", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("journal j.db: 3 calls in 1 run, 0 batch streams done")
    for word in ("runs", "calls per service", "slowest calls", "think", "p.cx", "alpha"):
        assert word in text.stdout
    show = cx("journal", "show", "j.db", "--format", "json", "--service", "think",
              cwd=tmp_path)
    rows = [json.loads(line) for line in show.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["request"] == {"prompt": "alpha"}
    assert rows[0]["answer"] == "[think] alpha" and rows[0]["duration_ms"] == 800
    assert rows[0]["stream"] == -1 and rows[0]["occurrence"] == 0
    table = cx("journal", "show", "j.db", cwd=tmp_path)
    assert "[think] alpha" in table.stdout  # answers are shown as text, not markup
    for args in (("journal", "nope.db"), ("journal", "show"), ("journal", "x", "y", "z")):
        r = cx(*args, cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr, args


def test_replay_needs_no_network_even_for_the_openai_provider(tmp_path: Path) -> None:
    """With --replay nothing is sent, so the openai provider may run on the virtual
    clock (a `cxpar.toml` naming it does not break `cxpar test`)."""
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    assert cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx",
              cwd=tmp_path).returncode == 0
    dead = ("--provider", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    r = cx("run", "--clock", "virtual", *dead, "--replay", "j.db", "p.cx", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("[think] alpha false [infer] beta [think] alpha ")
    no_replay = cx("run", "--clock", "virtual", *dead, "p.cx", cwd=tmp_path)
    assert no_replay.returncode == 2 and "--clock real" in no_replay.stderr


def test_reported_tokens_and_the_answering_model_are_journaled(tmp_path: Path) -> None:
    """Tokens the endpoint reports (its `usage`) and the model its reply names are
    recorded per call; the sim's token estimates are not reported tokens."""
    from tests.providers.fake_openai import Act, FakeServer

    srv = FakeServer()
    srv.script = lambda req: Act(content="yes", model="m-2026-11",
                                 usage={"prompt_tokens": 11, "completion_tokens": 4,
                                        "total_tokens": 15})
    srv.start()
    try:
        (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
        r = cx("run", "--provider", "openai", "--base-url", srv.base_url, "--model", "m",
               "--journal", "j.db", "p.cx", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert len(srv.requests) == 3
    finally:
        srv.stop()
    stats = json.loads(cx("journal", "j.db", "--format", "json", cwd=tmp_path).stdout)
    assert stats["tokens"] == {"prompt": 33, "completion": 12}
    assert {s["service"]: (s["prompt_tokens"], s["completion_tokens"])
            for s in stats["services"]} == {"think": (11, 4), "infer": (11, 4),
                                            "is": (11, 4)}
    shown = [json.loads(line) for line in cx("journal", "show", "j.db", "--format", "json",
                                              cwd=tmp_path).stdout.splitlines()]
    assert {(c["model"], c["endpoint"]) for c in shown} == {("m-2026-11", srv.base_url)}
    table = cx("journal", "j.db", cwd=tmp_path).stdout
    assert "tokens: 33 prompt + 12 completion" in table

    cx("run", "--clock", "virtual", "--journal", "sim.db", "p.cx", cwd=tmp_path)
    sim = json.loads(cx("journal", "sim.db", "--format", "json", cwd=tmp_path).stdout)
    assert sim["tokens"] == {"prompt": None, "completion": None}


def test_a_locked_or_empty_journal_path_is_a_usage_error_saying_so(tmp_path: Path) -> None:
    """Another process holding the journal's write lock past the busy timeout is
    reported as a lock (not as "not a cxpar journal"); an empty path says so."""
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    assert cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx",
              cwd=tmp_path).returncode == 0
    holder = sqlite3.connect(tmp_path / "j.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        r = cx("run", "--clock", "virtual", "--journal", "j.db", "p.cx", cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
        assert "journal `j.db` is locked by another process" in r.stderr
    finally:
        holder.close()
    for flag in ("--journal", "--replay"):
        r = cx("run", "--clock", "virtual", flag, "", "p.cx", cwd=tmp_path)
        assert r.returncode == 2 and "the journal path is empty" in r.stderr, r.stderr


@pytest.mark.parametrize("flag", ["--journal", "--replay"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_journal_that_is_not_a_regular_file_is_refused_at_once(
        tmp_path: Path, flag: str, kind: str) -> None:
    """`--replay FIFO` used to block forever in SQLite's open; `/dev/null` gave SQLite's
    "cannot rollback" / "empty journal"."""
    (tmp_path / "p.cx").write_text(PROGRAM, encoding="utf-8")
    if kind == "fifo":
        os.mkfifo(tmp_path / "j.db")
        path = "j.db"
    else:
        path = os.devnull
    r = cx("run", "--clock", "virtual", flag, path, "p.cx", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert f"journal `{path}` is not a regular file" in r.stderr
    r = cx("journal", "show", path, cwd=tmp_path)
    assert r.returncode == 2 and "is not a regular file" in r.stderr
