"""Batch results files that can be trusted, through the real CLI: one bad record only
ever costs its own line, the input is never the output, the output says which input it
belongs to, record groups are detectably complete, damage is repaired on ``--resume``,
one writer at a time, and SIGTERM/SIGKILL never lose or duplicate a record."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cxpar.runtime.batchfile import scan_output

from .conftest import ROOT, write_jsonl

pytestmark = pytest.mark.skipif(os.name != "posix", reason="flock and signals are POSIX")

#: Every fifth record writes a group of three lines.
PROG = """
/// @external
on input.record (event) {
    var r = think { prompt: "doc " + event.n };
    emit output.record { n: event.n, result: r.result };
    if (event.n % 5 == 0) {
        emit output.record { n: event.n, part: "b" };
        emit output.record { n: event.n, part: "c" };
    }
}
"""
N = 120


def cli(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", "run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, **kw)


def popen(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cxpar", "run", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def batch(tmp_path: Path) -> dict[str, Path]:
    prog = tmp_path / "docs.cx"
    prog.write_text(PROG, encoding="utf-8")
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(N)])
    ref = tmp_path / "ref.jsonl"
    r = cli("--clock", "virtual", str(prog), "--input", str(inp), "--output", str(ref),
            "--no-progress")
    assert r.returncode == 0, r.stderr
    return {"prog": prog, "in": inp, "ref": ref, "out": tmp_path / "out.jsonl"}


def groups(path: Path) -> dict[int, list[dict[str, Any]]]:
    """The file's lines by record; fails on a record that appears twice."""
    out: dict[int, list[dict[str, Any]]] = {}
    prev = None
    for raw in path.read_bytes().splitlines():
        line = json.loads(raw.decode("utf-8"))  # valid UTF-8 and JSON, every line
        i = line["index"]
        assert i == prev or i not in out, f"record {i} written twice"
        out.setdefault(i, []).append(line)
        prev = i
    return out


def slow(b: dict[str, Path], *extra: str, think_ms: int = 30) -> tuple[str, ...]:
    return ("--clock", "real", "--latency", f"think={think_ms}", str(b["prog"]), "--input",
            str(b["in"]), "--output", str(b["out"]), "--streams", "3", "--no-progress", *extra)


def wait_lines(path: Path, n: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.01)
    raise AssertionError("the batch did not get going")


# ------------------------------------------------------------------ the format

def test_groups_carry_part_and_of(batch: dict[str, Path]) -> None:
    g = groups(batch["ref"])
    assert sorted(g) == list(range(N))
    assert g[1] == [{"index": 1, "output": {"n": 1, "result": "[think] doc 1"}}]
    assert [(x["part"], x["of"]) for x in g[5]] == [(1, 3), (2, 3), (3, 3)]
    assert g[5][1]["output"] == {"n": 5, "part": "b"}
    meta = json.loads((batch["ref"].parent / "ref.jsonl.cxpar.json").read_text())
    assert meta["input"] == str(batch["in"].resolve()) and meta["size"] > 0
    assert len(meta["sha256"]) == 64


# ------------------------------------------------------------------ one bad record

def test_a_lone_surrogate_costs_nothing(tmp_path: Path) -> None:
    prog = tmp_path / "p.cx"
    prog.write_text("/// @external\non input.record (e) { emit output.record { s: e.s }; }\n")
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"s": "ok"}\n{"s": "\\ud800"}\n{"s": "x\\udfff\\ud83d\\ude00"}\n')
    out = tmp_path / "out.jsonl"
    r = cli(str(prog), "--input", str(inp), "--output", str(out), "--ordered",
            "--no-progress", "--clock", "virtual")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in out.read_bytes().decode("utf-8").splitlines()]
    assert [x["output"]["s"] for x in lines] == ["ok", "\ud800", "x\udfff\U0001f600"]
    r = cli(str(prog), "--input", str(inp), "--output", str(out), "--resume",
            "--no-progress", "--clock", "virtual")
    assert r.returncode == 0, r.stderr
    assert len(out.read_bytes().splitlines()) == 3


def test_printing_a_surrogate_fails_only_its_record(tmp_path: Path) -> None:
    prog = tmp_path / "p.cx"
    prog.write_text("/// @external\non input.record (e) { print(e.s); "
                    "emit output.record { ok: true }; }\n")
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"s": "a"}\n{"s": "\\ud800"}\n{"s": "c"}\n')
    out = tmp_path / "out.jsonl"
    r = cli(str(prog), "--input", str(inp), "--output", str(out), "--ordered",
            "--no-progress", "--clock", "virtual")
    assert r.returncode == 3 and "internal error" not in r.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [("error" in x) for x in lines] == [False, True, False]
    assert "cannot print" in lines[1]["error"]["message"]


# ------------------------------------------------------------------ output == input

@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "dotdot"])
def test_output_may_not_be_the_input(tmp_path: Path, how: str) -> None:
    prog = tmp_path / "p.cx"
    prog.write_text("/// @external\non input.record (e) { emit output.record e; }\n")
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(5)])
    before = inp.read_bytes()
    out = {"same": inp, "dotdot": tmp_path / "sub" / ".." / "in.jsonl",
           "symlink": tmp_path / "link.jsonl", "hardlink": tmp_path / "hard.jsonl"}[how]
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        out.symlink_to(inp)
    elif how == "hardlink":
        os.link(inp, out)
    for extra in ((), ("--resume",)):
        r = cli(str(prog), "--input", str(inp), "--output", str(out), *extra)
        assert r.returncode == 2, r.stderr
        assert "is the input file" in r.stderr
        assert inp.read_bytes() == before


# ------------------------------------------------------------------ the sidecar

def test_resume_refuses_results_of_another_input(batch: dict[str, Path],
                                                 tmp_path: Path) -> None:
    other = write_jsonl(tmp_path / "other.jsonl", [{"n": n + 1000} for n in range(N)])
    ref = batch["ref"]
    before = ref.read_bytes()
    r = cli("--clock", "virtual", str(batch["prog"]), "--input", str(other), "--output",
            str(ref), "--resume", "--no-progress")
    assert r.returncode == 2
    assert "holds results for" in r.stderr and str(batch["in"].resolve()) in r.stderr
    assert ref.read_bytes() == before
    # the same content at another path is the same input
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(batch["in"].read_bytes())
    r = cli("--clock", "virtual", str(batch["prog"]), "--input", str(copy), "--output",
            str(ref), "--resume", "--no-progress")
    assert r.returncode == 0 and "has the same content" in r.stderr
    assert ref.read_bytes() == before
    # no sidecar: nothing says what the results are
    (tmp_path / "ref.jsonl.cxpar.json").unlink()
    r = cli("--clock", "virtual", str(batch["prog"]), "--input", str(copy), "--output",
            str(ref), "--resume", "--no-progress")
    assert r.returncode == 2 and "is missing" in r.stderr


# ------------------------------------------------------------------ repair on resume

def resume_and_compare(b: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    r = cli("--clock", "virtual", str(b["prog"]), "--input", str(b["in"]), "--output",
            str(b["out"]), "--resume", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert groups(b["out"]) == groups(b["ref"])
    return r


def test_incomplete_and_damaged_groups_are_redone(batch: dict[str, Path]) -> None:
    lines = batch["ref"].read_bytes().splitlines(keepends=True)
    where = {json.loads(x)["index"]: k for k, x in reversed(list(enumerate(lines)))}
    bad = list(lines)
    bad[where[10] + 1] = b""                                   # group of 10 loses part 2
    bad[where[20]] = b'{"index": 20, "outp\n'                   # a torn line, mid-file
    bad[where[30]] = b'{"index": 30, "output": "\xff\xfe"}\n'   # not UTF-8
    bad[where[40]] = b"garbage\n"                               # not JSON at all
    bad.append(lines[where[7]])                                 # record 7 twice
    bad.append(lines[where[15]][:25])                           # torn last line
    batch["out"].write_bytes(b"".join(bad))
    (batch["out"].parent / "out.jsonl.cxpar.json").write_bytes(
        (batch["ref"].parent / "ref.jsonl.cxpar.json").read_bytes())
    r = resume_and_compare(batch)
    for what in ("(record 10): incomplete: 2 of its 3 lines", "(record 20): not valid JSON",
                 "(record 30): not valid UTF-8", "(an unknown record): not valid JSON",
                 "(record 7): written twice", "(record 15): cut off"):
        assert what in r.stderr, r.stderr


def test_scan_keeps_a_clean_file_untouched(batch: dict[str, Path]) -> None:
    before = batch["ref"].read_bytes()
    scan = scan_output(str(batch["ref"]))
    assert scan.done == set(range(N)) and not scan.problems and not scan.redo
    assert batch["ref"].read_bytes() == before


def test_file_size_limit_tears_a_group_and_resume_repairs_it(batch: dict[str, Path]) -> None:
    limit = len(batch["ref"].read_bytes()) // 3

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    r = cli("--clock", "virtual", str(batch["prog"]), "--input", str(batch["in"]),
            "--output", str(batch["out"]), "--no-progress", preexec_fn=small_files)
    assert r.returncode != 0
    assert "cannot write" in r.stderr and "--resume" in r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    resume_and_compare(batch)


# ------------------------------------------------------------------ one writer

def test_a_second_writer_is_refused_and_a_stale_lock_never_blocks(
        batch: dict[str, Path]) -> None:
    # Slow enough that the first run is still writing however busy the machine is.
    first = popen(*slow(batch, think_ms=2000))
    try:
        wait_lines(batch["out"], 3, first)
        second = cli(*slow(batch, "--resume"))
        assert second.returncode == 2
        assert f"being written by another cxpar run (pid {first.pid} on" in second.stderr
        third = cli(*slow(batch))  # without --resume it would truncate: also refused
        assert third.returncode == 2
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        assert first.stderr is not None
        first.stderr.close()
    assert Path(str(batch["out"]) + ".lock").exists()  # stale: the kernel dropped the lock
    resume_and_compare(batch)
    assert not Path(str(batch["out"]) + ".lock").exists()


# ------------------------------------------------------------------ signals

def test_sigterm_ends_like_sigint(batch: dict[str, Path]) -> None:
    proc = popen(*slow(batch))
    wait_lines(batch["out"], 10, proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "run again with --resume to finish" in err
    written = groups(batch["out"])  # every line complete
    assert 0 < len(written) < N
    resume_and_compare(batch)


def test_sigterm_ends_a_single_run(tmp_path: Path) -> None:
    prog = tmp_path / "p.cx"
    prog.write_text('print("go");\nvar r = await { durationMs: 60000 };\n')
    p = subprocess.Popen([sys.executable, "-m", "cxpar", "run", str(prog)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert p.stdout is not None and p.stdout.readline() == "go\n"
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=30)
    assert p.returncode == 143 and "terminated (SIGTERM)" in err
    assert "still running" not in err or "Traceback" not in err


def test_five_sigkills_lose_and_duplicate_nothing(batch: dict[str, Path]) -> None:
    kills = 0
    for at in (5, 25, 45, 70, 95):
        proc = popen(*slow(batch, "--resume"))
        try:
            wait_lines(batch["out"], at, proc)
        except AssertionError:
            pass  # it finished first
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert kills >= 3
    resume_and_compare(batch)
