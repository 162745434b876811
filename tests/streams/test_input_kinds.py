"""`--input` that is not a regular file (a FIFO, `<(…)`, a directory, a device) is refused
at once with the reason (a batch reads its input more than once), exit 2, never a hang
and never "no such input file"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, run_cli

EX = "examples/batch_tickets.cx"
RECORDS = ROOT / "examples" / "batch_tickets.jsonl"


def _refused(proc: subprocess.CompletedProcess[str], path: str, kind: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert f"input `{path}` is {kind}, not a regular file" in proc.stderr
    assert "--input needs a regular file" in proc.stderr
    assert "no such input file" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("extra", [[], ["--output", "OUT", "--resume"], ["--ordered"]],
                         ids=["plain", "resume", "ordered"])
def test_a_fifo_input_is_refused_without_waiting_for_a_writer(
        tmp_path: Path, extra: list[str]) -> None:
    fifo = tmp_path / "records.fifo"
    os.mkfifo(fifo)
    extra = [str(tmp_path / "out.jsonl") if x == "OUT" else x for x in extra]
    proc = run_cli("run", "--clock", "virtual", EX, "--input", str(fifo), *extra, timeout=60)
    _refused(proc, str(fifo), "a pipe")


def test_process_substitution_is_refused_with_the_reason() -> None:
    cmd = (f'"{sys.executable}" -m cxpar run --clock virtual {EX} '
           f'--input <(cat "{RECORDS}")')
    proc = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "is a pipe, not a regular file" in proc.stderr
    assert "save the records to a file first" in proc.stderr


@pytest.mark.parametrize("kind", ["a directory", "a device"])
def test_a_directory_or_device_input_is_refused(tmp_path: Path, kind: str) -> None:
    path = str(tmp_path) if kind == "a directory" else "/dev/null"
    _refused(run_cli("run", "--clock", "virtual", EX, "--input", path), path, kind)


def test_a_missing_input_still_says_no_such_file(tmp_path: Path) -> None:
    proc = run_cli("run", EX, "--input", str(tmp_path / "nope.jsonl"))
    assert proc.returncode == 2 and "no such input file" in proc.stderr


def test_the_same_records_from_a_regular_file_run(tmp_path: Path) -> None:
    proc = run_cli("run", "--clock", "virtual", EX, "--input", str(RECORDS), "--ordered")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 20
