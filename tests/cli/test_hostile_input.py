"""Hostile input to the front end through the real CLI (issue 14): runs of bad tokens,
FIFOs and other non-regular files, control characters and undecodable bytes in file
names and source lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ESC = "\x1b"


def cxpar(*args: str | bytes | Path, timeout: float = 120) -> tuple[int, bytes, bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CXPAR_DEBUG")}
    env["NO_COLOR"] = "1"
    proc = subprocess.run([sys.executable, "-m", "cxpar",
                           *[a if isinstance(a, bytes) else str(a) for a in args]],
                          capture_output=True, env=env, timeout=timeout)
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr, proc.stderr
    proc.stdout.decode("utf-8")  # always valid UTF-8
    proc.stderr.decode("utf-8")
    return proc.returncode, proc.stdout, proc.stderr


def test_200_kb_of_close_parens_is_one_error(tmp_path: Path) -> None:
    p = tmp_path / "parens.cx"
    p.write_text(")" * 200_000, encoding="utf-8")
    code, _out, err = cxpar("check", p)
    assert code == 1
    assert err.decode().count("error[") == 1
    assert b"checked 1 file: 1 error" in err


def test_many_errors_are_capped_with_a_count(tmp_path: Path) -> None:
    p = tmp_path / "many.cx"
    p.write_text("var = 1;\n" * 300, encoding="utf-8")
    code, out, _err = cxpar("check", "--format", "json", p)
    rows = [json.loads(line) for line in out.decode().splitlines()]
    assert code == 1 and len(rows) == 101
    assert rows[-1]["code"] == "CX109" and rows[-1]["message"] == "and 200 more syntax errors"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this platform has no FIFOs")
@pytest.mark.parametrize("command", ["check", "run", "graph", "compile"])
def test_fifo_is_refused_not_read(tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "pipe.cx"
    os.mkfifo(fifo)
    code, _out, err = cxpar(command, fifo, timeout=60)
    assert code == 1
    assert "error[CX001]: `" in err.decode() and "is not a regular file (a FIFO)" in err.decode()
    assert " | " not in err.decode()  # no (empty) source line shown for a file-level error


def test_character_device_is_refused() -> None:
    code, _out, err = cxpar("check", "/dev/null", timeout=60)
    assert code == 1 and b"is not a regular file (a character device)" in err


def test_control_characters_in_file_names_and_lines_are_escaped(tmp_path: Path) -> None:
    name = f"evil{ESC}[2J\r{ESC}]0;title\a\u202e.cx"
    p = tmp_path / name
    p.write_text(f'var x = 1;\nprint("{ESC}[31m" + y);\n', encoding="utf-8")
    code, _out, err = cxpar("check", p)
    text = err.decode()
    assert code == 1
    assert ESC not in text and "\r" not in text and "\a" not in text and "\u202e" not in text
    assert "evil\\x1b[2J\\x0d\\x1b]0;title\\x07\\u202e.cx:2:" in text
    assert 'print("\\x1b[31m" + y);' in text
    # the caret still sits under `y` (escapes widen the line)
    lines = text.splitlines()
    src = next(i for i, line in enumerate(lines) if 'print("' in line)
    assert lines[src + 1].index("^") == lines[src].index("y")


def test_control_characters_in_runtime_error_reports(tmp_path: Path) -> None:
    p = tmp_path / f"run{ESC}[1m.cx"
    p.write_text(f'var o = null;\nprint("{ESC}[2J", o.x);\n', encoding="utf-8")
    code, out, err = cxpar("run", "--clock", "virtual", p)
    assert code == 3 and out == b""
    text = err.decode()
    assert ESC not in text
    assert "run\\x1b[1m.cx:2:" in text and 'print("\\x1b[2J", o.x);' in text


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names must be UTF-8")
def test_undecodable_file_name_bytes(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad\xff\xfename.cx"
    with open(raw, "wb") as f:
        f.write(b"var x = ;\n")
    code, out, err = cxpar("check", "--format", "json", raw)
    assert code == 1
    row = json.loads(out.decode("utf-8"))
    assert row["file"].endswith("bad\\xff\\xfename.cx") and row["code"] == "CX101"
    code, _out, err = cxpar("check", raw)
    assert "bad\\xff\\xfename.cx:1:9" in err.decode("utf-8")
    code, out, _err = cxpar("check", "--format", "json", os.fsencode(tmp_path))
    assert json.loads(out.decode("utf-8").splitlines()[0])["file"].endswith("\\xff\\xfename.cx")
