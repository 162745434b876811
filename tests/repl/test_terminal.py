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


def spawn(tmp_path: Path, cwd: Path = ROOT) -> Iterator[object]:
    """`cxpar repl` in a pseudo-terminal, at its first prompt (ended afterwards)."""
    if not CXPAR.exists():
        pytest.skip("the cxpar script is not installed next to this Python")
    child = pexpect.spawn(str(CXPAR), ["repl"], env=_env(tmp_path), encoding="utf-8",
                          timeout=TIMEOUT, dimensions=(40, 160), cwd=str(cwd))
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


@pytest.fixture
def repl(tmp_path: Path) -> Iterator[object]:
    yield from spawn(tmp_path)


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


def test_auto_indent_and_dedent_on_closing_brace(repl: object, tmp_path: Path) -> None:
    c = repl
    enter(c, "on tick (e) {")
    c.expect_exact("...")
    enter(c, 'if (e.n > 0) {')
    c.expect_exact("...")
    enter(c, 'print("tick " + e.n);')
    c.expect_exact("...")
    c.send("}")
    enter(c, "")
    c.expect_exact("...")
    c.send("}")
    enter(c, "")
    c.expect_exact(PROMPT)
    enter(c, "emit tick { n: 1 };")
    c.expect_exact("tick 1")
    c.expect_exact(PROMPT)
    enter(c, ":quit")
    c.expect(pexpect.EOF)
    # what was typed flush left was indented one level per open `{`, and `}` dedented
    assert ('on tick (e) {\n    if (e.n > 0) {\n        print("tick " + e.n);\n    }\n}'
            in (tmp_path / "history").read_text().replace("\n+", "\n"))


def test_load_completes_paths(tmp_path: Path) -> None:
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "hello_world.cx").write_text('print("loaded " + "ok");\n',
                                                         encoding="utf-8")
    (tmp_path / "programs" / "notes.txt").write_text("x", encoding="utf-8")
    for child in spawn(tmp_path, cwd=tmp_path):
        child.send(":load progr\t")  # type: ignore[attr-defined]
        child.expect_exact("ams")  # type: ignore[attr-defined]  # `programs`, a directory
        child.send("/\t")  # type: ignore[attr-defined]  # one .cx file (not notes.txt)
        child.expect_exact("hello_world.cx")  # type: ignore[attr-defined]
        enter(child, "")
        child.expect_exact("loaded ok")  # type: ignore[attr-defined]
        child.expect_exact(PROMPT)  # type: ignore[attr-defined]
        enter(child, ":quit")
        child.expect(pexpect.EOF)  # type: ignore[attr-defined]


def test_piped_echo_and_last_value(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cxpar", "repl"], cwd=tmp_path,
                          input='len("abc")\n"3"\n_ + "!"\nprint("p");\nnull\nvar x = 2;\n',
                          capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == '3\n"3"\n"3!"\np\n'
