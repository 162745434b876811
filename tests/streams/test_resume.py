"""``--resume`` after the real CLI was killed mid-way: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, write_jsonl

PROG = """
/// @external
on input.record (event) {
    var r = think { prompt: "doc " + event.n, summary: doc.summary };
    emit output.record { n: event.n, summary: r.summary, result: r.result };
    if (event.n % 5 == 0) { emit output.record { n: event.n, extra: true }; }
}
on doc.summary (event) { await { durationMs: 5 }; return "sum of " + event.prompt; }
"""

N = 200


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cxpar", "run", *args]


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_resume_after_kill(tmp_path: Path) -> None:
    prog = tmp_path / "docs.cx"
    prog.write_text(PROG, encoding="utf-8")
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(N)])
    # the reference: one uninterrupted run on the virtual clock
    ref_out = tmp_path / "ref.jsonl"
    ref = subprocess.run(_cli("--clock", "virtual", str(prog), "--input", str(inp), "--output",
                              str(ref_out), "--no-progress"),
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ref.returncode == 0, ref.stderr
    # the interrupted run: real clock, 20 ms per think call, 4 streams -> ~1.5 s in total
    out = tmp_path / "out.jsonl"
    args = ("--clock", "real", "--latency", "think=20", str(prog), "--input", str(inp),
            "--output", str(out), "--streams", "4", "--no-progress")
    proc = subprocess.Popen(_cli(*args), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.read_text(encoding="utf-8").count("\n") >= 40:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.stderr is not None
    proc.stderr.close()
    first = out.read_text(encoding="utf-8")
    done_before = {json.loads(x)["index"] for x in first.splitlines()
                   if x.endswith("}")}
    assert 0 < len(done_before) < N, "the run was not interrupted mid-way"
    # resume: only the missing records run
    res = subprocess.run(_cli(*args, "--resume"), cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    lines = _lines(out)
    groups: dict[int, list[dict]] = {}
    prev = None
    for line in lines:
        i = line["index"]
        assert i == prev or i not in groups, f"index {i} appears twice"
        groups.setdefault(i, []).append(line)
        prev = i
    assert sorted(groups) == list(range(N))
    ref_groups: dict[int, list[dict]] = {}
    for line in _lines(ref_out):
        ref_groups.setdefault(line["index"], []).append(line)
    assert groups == ref_groups
    # a second resume has nothing left to do
    again = subprocess.run(_cli(*args, "--resume"), cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0
    assert _lines(out) == lines
