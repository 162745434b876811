"""`cxpar test` through the real CLI: discovery, companions, diffs, `--update`, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cx(*args: str, cwd: Path, env: dict[str, str] | None = None
       ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    full["PYTHONPATH"] = str(ROOT)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def suite(root: Path) -> None:
    """A small suite: a plain program, one with an exit code, a batch, extra args, a
    replay, and a program with no golden (not a test)."""
    write(root / "hello.cx", 'var r = think { prompt: "hi" };\nprint(r.result, now());\n')
    write(root / "hello.out", "[think] hi 800\n")
    write(root / "boom.cx", 'print("before");\nvar x = null;\nprint(x.y);\n')
    write(root / "boom.out", "before\n")
    write(root / "boom.code", "3\n")
    write(root / "sub" / "batch.cx",
          'on input.record (e) { var r = infer { prompt: e.q };\n'
          '  emit output.record { q: e.q, a: r.result }; }\n')
    write(root / "sub" / "batch.jsonl", '{"q": "a"}\n{"q": "b"}\n')
    write(root / "sub" / "batch.out",
          '{"index": 0, "output": {"q": "a", "a": "[infer] a"}}\n'
          '{"index": 1, "output": {"q": "b", "a": "[infer] b"}}\n')
    write(root / "sub" / "fast.cx", 'var r = think { prompt: "x" };\nprint(now());\n')
    write(root / "sub" / "fast.args", "# a faster model\n--latency think=5\n")
    write(root / "sub" / "fast.out", "5\n")
    write(root / "scratch.cx", "print(1);\n")  # no golden: not a test
    write(root / ".hidden" / "h.cx", "print(1);\n")
    write(root / ".hidden" / "h.out", "wrong\n")


def test_a_passing_suite(tmp_path: Path) -> None:
    suite(tmp_path)
    r = cx("test", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "4 passed, 0 failed"
    assert sorted(lines[:-1]) == sorted(f"ok   {n}" for n in (
        "boom.cx", "hello.cx", "sub/batch.cx", "sub/fast.cx"))
    named = cx("test", "hello.cx", "sub", cwd=tmp_path)
    assert named.returncode == 0 and named.stdout.splitlines()[-1] == "3 passed, 0 failed"


def test_failures_show_a_diff_and_the_exit_code(tmp_path: Path) -> None:
    suite(tmp_path)
    write(tmp_path / "hello.out", "[think] hello 800\n")
    write(tmp_path / "boom.code", "0\n")
    r = cx("test", ".", cwd=tmp_path)
    assert r.returncode == 1
    out = r.stdout
    assert out.splitlines()[-1] == "2 passed, 2 failed"
    assert "FAIL hello.cx" in out and "FAIL boom.cx" in out
    assert "-[think] hello 800" in out and "+[think] hi 800" in out
    assert "exit code 3, expected 0" in out
    assert "error" in out  # the failing test's stderr (the runtime error) is shown


def test_update_rewrites_goldens(tmp_path: Path) -> None:
    suite(tmp_path)
    write(tmp_path / "hello.out", "stale\n")
    write(tmp_path / "new.cx", "print(2 + 2);\n")
    r = cx("test", "--update", ".", "new.cx", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "updated hello.out" in r.stdout and "updated new.out" in r.stdout
    assert (tmp_path / "hello.out").read_text(encoding="utf-8") == "[think] hi 800\n"
    assert (tmp_path / "new.out").read_text(encoding="utf-8") == "4\n"
    assert not (tmp_path / "new.code").exists()
    assert cx("test", cwd=tmp_path).stdout.splitlines()[-1] == "5 passed, 0 failed"


def test_a_replayed_journal_pins_answers(tmp_path: Path) -> None:
    """NAME.journal: the test runs on recorded answers (here recorded from a sim with
    other latencies, standing in for a real model); an unrecorded call fails."""
    prog = write(tmp_path / "pinned.cx",
                 'var r = think { prompt: "q" };\nprint(r.result, now(), r._errors);\n')
    rec = cx("run", "--clock", "virtual", "--latency", "think=1234", "--journal",
             "pinned.journal", prog.name, cwd=tmp_path)
    assert rec.returncode == 0, rec.stderr
    write(tmp_path / "pinned.out", "[think] q 1234 null\n")
    r = cx("test", cwd=tmp_path, env={"CXPAR_PROVIDER": "openai"})  # env is ignored
    assert r.returncode == 0, r.stdout + r.stderr
    write(tmp_path / "pinned.cx", 'var r = think { prompt: "other" };\n'
                                  'print(r.result, now(), r._errors.result.type);\n')
    write(tmp_path / "pinned.out", "null 0 not_recorded\n")
    r = cx("test", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_nothing_to_test_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "a.cx", "print(1);\n")
    for args in (("test",), ("test", "missing"), ("test", "a.txt")):
        write(tmp_path / "a.txt", "x")
        r = cx(*args, cwd=tmp_path)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
    r = cx("test", "a.cx", cwd=tmp_path)  # named without a golden: a failure that says how
    assert r.returncode == 1 and "cxpar test --update a.cx" in r.stdout
    json.dumps(r.stdout)
