"""`cxpar fmt` through the real command line: in place, --check, --diff, stdin, files
with syntax errors left untouched (exit 1), line endings kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.cli.test_bad_input import Run, cxpar

UGLY = "var  x=1;\non a.b(e){print(x);}\n"
PRETTY = "var x = 1;\non a.b (e) {\n    print(x);\n}\n"
BROKEN = "var x = 1\nprint(x);\n"


def _stdin(*args: str, data: bytes) -> Run:
    env = dict(os.environ, NO_COLOR="1")
    proc = subprocess.run([sys.executable, "-m", "cxpar", "fmt", *args], input=data,
                          capture_output=True, env=env, timeout=60)
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


def test_in_place(tmp_path: Path) -> None:
    ugly, pretty = tmp_path / "ugly.cx", tmp_path / "pretty.cx"
    ugly.write_text(UGLY)
    pretty.write_text(PRETTY)
    pretty.chmod(0o640)
    run = cxpar("fmt", tmp_path)
    assert run.code == 0, run.err
    assert ugly.read_text() == PRETTY and pretty.read_text() == PRETTY
    assert "1 file reformatted, 1 file left unchanged" in run.err
    assert pretty.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretty.cx", "ugly.cx"]


def test_check_lists_files_and_writes_nothing(tmp_path: Path) -> None:
    ugly = tmp_path / "ugly.cx"
    ugly.write_text(UGLY)
    run = cxpar("fmt", "--check", ugly)
    assert run.code == 1
    assert f"would reformat: {ugly}" in run.out
    assert ugly.read_text() == UGLY
    ugly.write_text(PRETTY)
    assert cxpar("fmt", "--check", ugly).code == 0


def test_diff(tmp_path: Path) -> None:
    ugly = tmp_path / "ugly.cx"
    ugly.write_text(UGLY)
    run = cxpar("fmt", "--diff", ugly)
    assert run.code == 1
    assert "-var  x=1;\n" in run.out and "+var x = 1;\n+on a.b (e) {\n" in run.out
    assert run.out.startswith(f"--- {ugly}\n+++ {ugly}\n")
    assert ugly.read_text() == UGLY


def test_syntax_error_left_untouched(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.cx", tmp_path / "good.cx"
    bad.write_text(BROKEN)
    good.write_text(UGLY)
    run = cxpar("fmt", tmp_path)
    assert run.code == 1
    assert "error[CX102]: expected `;`, found `print`" in run.err
    assert f"--> {bad}:2:1" in run.err
    assert bad.read_text() == BROKEN
    assert good.read_text() == PRETTY  # the other files are still formatted
    assert "1 file not formatted (errors)" in run.err


def test_stdin() -> None:
    run = _stdin("-", data=UGLY.encode())
    assert (run.code, run.out) == (0, PRETTY)
    run = _stdin("--check", "-", data=UGLY.encode())
    assert run.code == 1 and "would reformat: -" in run.out
    assert _stdin("--check", "-", data=PRETTY.encode()).code == 0
    run = _stdin("--diff", "-", data=UGLY.encode())
    assert run.code == 1 and "+var x = 1;" in run.out


def test_stdin_syntax_error_echoes_the_input() -> None:
    run = _stdin("-", data=BROKEN.encode())
    assert run.code == 1
    assert run.out == BROKEN
    assert "CX102" in run.err and "<stdin>:2:1" in run.err


def test_crlf_and_bom_are_kept(tmp_path: Path) -> None:
    f = tmp_path / "win.cx"
    f.write_bytes(b"\xef\xbb\xbfvar  a=1;\r\nvar b=2;\r\n")
    assert cxpar("fmt", f).code == 0
    assert f.read_bytes() == b"\xef\xbb\xbfvar a = 1;\r\nvar b = 2;\r\n"
    assert cxpar("fmt", "--check", f).code == 0


def test_usage_errors(tmp_path: Path) -> None:
    assert cxpar("fmt", tmp_path / "missing.cx").code == 2
    assert cxpar("fmt").code == 2
    assert cxpar("fmt", "-", tmp_path).code == 2
    (tmp_path / "bin.cx").write_bytes(b"\x00\x01")
    run = cxpar("fmt", tmp_path / "bin.cx")
    assert run.code == 1 and "CX002" in run.err


def test_a_symlink_stays_a_link_and_its_target_is_formatted(tmp_path: Path) -> None:
    """Named directly, relative or absolute, or found under a directory: the link is kept
    (not replaced by a regular file) and the file it points to gets the new text."""
    real = tmp_path / "real"
    real.mkdir()
    src = "var  x=1;\nprint(x);\n"
    links = tmp_path / "links"
    links.mkdir()
    for i, how in enumerate(["relative", "absolute", "in-dir"]):
        target = real / f"t{i}.cx"
        target.write_text(src, encoding="utf-8")
        link = (links if how == "in-dir" else tmp_path) / f"l{i}.cx"
        link.symlink_to(os.path.relpath(target, link.parent) if how == "relative" else target)
        r = cxpar("fmt", links if how == "in-dir" else link, cwd=tmp_path)
        assert r.code == 0, r.err
        assert link.is_symlink(), how
        assert target.read_text(encoding="utf-8") == "var x = 1;\nprint(x);\n", how
