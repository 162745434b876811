"""End-to-end: the real `cxpar repl` in a pseudo-terminal (pexpect), and piped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

ROOT = Path(__file__).resolve().parents[2]
CXPAR = Path(sys.executable).with_name("cxpar")
PROMPT = "cx>"
TIMEOUT = 10


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", NO_COLOR="1",
                CXPAR_HISTORY=str(tmp_path / "history"), XDG_DATA_HOME=str(tmp_path))


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[object]:
    if not CXPAR.exists():
        pytest.skip("the cxpar script is not installed next to this Python")
    child = pexpect.spawn(str(CXPAR), ["repl"], env=_env(tmp_path), encoding="utf-8",
                          timeout=TIMEOUT, dimensions=(40, 160), cwd=str(ROOT))
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def enter(child: object, line: str) -> None:
    child.send(line + "\r")  # type: ignore[attr-defined]


def test_entity_over_several_lines_then_new_and_emit(repl: object, tmp_path: Path) -> None:
    c = repl
    enter(c, "conscious Greeter {")
    c.expect_exact("...")
    enter(c, '  on hello (e) { print("hel" + "lo " + e.name); }')
    c.expect_exact("...")
    enter(c, "}")
    c.expect_exact(PROMPT)
    enter(c, "var g = new Greeter();")
    c.expect_exact(PROMPT)
    enter(c, 'emit hello { name: "Ada" };')
    c.expect_exact("hello Ada")
    c.expect_exact(PROMPT)
    enter(c, "40 + 2")
    c.expect_exact("42")
    c.expect_exact(PROMPT)
    c.sendeof()
    c.expect(pexpect.EOF)
    c.close()
    assert c.exitstatus == 0
    assert "var g = new Greeter();" in (tmp_path / "history").read_text()


def test_syntax_error_then_correct_entry(repl: object) -> None:
    c = repl
    enter(c, "var = ;")
    c.expect_exact("error[CX101]")
    c.expect_exact("<repl-1>:1:5")
    c.expect_exact(PROMPT)
    enter(c, 'print("o" + "k");')
    c.expect_exact("ok")
    c.expect_exact(PROMPT)
    enter(c, ":quit")
    c.expect(pexpect.EOF)


def test_ctrl_c_cancels_long_await(repl: object) -> None:
    c = repl
    enter(c, 'print("wait" + "ing"); await { durationMs: 60000 };')
    c.expect_exact("waiting")
    c.sendintr()
    c.expect_exact("interrupted")
    c.expect_exact(PROMPT)
    enter(c, 'print("aft" + "er");')
    c.expect_exact("after")
    c.expect_exact(PROMPT)
    c.sendeof()
    c.expect(pexpect.EOF)


def test_load_example(repl: object) -> None:
    c = repl
    enter(c, ":clock virtual")
    c.expect_exact("clock: virtual")
    c.expect_exact(PROMPT)
    enter(c, ":load examples/is_not_routing.cx")
    c.expect_exact("message 1: server room is on fire")
    c.expect_exact(PROMPT)
    c.sendeof()
    c.expect(pexpect.EOF)


def _piped(text: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", "repl", *args], input=text,
                          capture_output=True, text=True, timeout=TIMEOUT, cwd=str(ROOT))


def test_piped_mode() -> None:
    got = _piped("var x = 2;\nprint(x * 21);\n")
    assert got.stdout == "42\n"
    assert got.returncode == 0
    assert "\x1b[" not in got.stdout + got.stderr


def test_piped_mode_errors_and_exit_code() -> None:
    got = _piped("var x = ;\nprint(1);\n")
    assert got.stdout == "1\n"
    assert "error[CX101]" in got.stderr and got.returncode == 1
    got = _piped("print(1 / 0);\nprint(2);\n")
    assert got.stdout == "2\n" and got.returncode == 3


def test_piped_load_matches_run() -> None:
    ex = "examples/multi_entity_pipeline.cx"
    run = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual", ex],
                         capture_output=True, text=True, timeout=TIMEOUT, cwd=str(ROOT))
    got = _piped(f":load {ex}\n", "--clock", "virtual")
    assert got.stdout == run.stdout
