"""Helpers for the SPEC-conformance tests: the real CLI (a subprocess) and in-process runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.semantics.conftest import diagnostics, run_cx


@dataclass
class Cli:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def cxpar(*args: str | Path, cwd: Path | None = None, stdin: str | None = None) -> Cli:
    """Run ``python -m cxpar ARGS``; never a traceback or an internal error."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CXPAR_DEBUG")}
    env["NO_COLOR"] = "1"
    proc = subprocess.run([sys.executable, "-m", "cxpar", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", errors="replace", env=env, cwd=cwd,
                          timeout=120, input=stdin)
    got = Cli(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in got.out + got.err, got.err
    assert "internal error" not in got.err, got.err
    assert got.code != 70, got.err
    return got


@pytest.fixture
def run_file(tmp_path: Path) -> Any:
    """``run_file(text, *args)``: write ``text`` to ``prog.cx`` and ``cxpar run`` it."""

    def go(text: str, *args: str, command: str = "run") -> Cli:
        path = tmp_path / "prog.cx"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        extra = ("--clock", "virtual") if command == "run" else ()
        return cxpar(command, path, *extra, *args)

    return go


@pytest.fixture
def cx() -> Any:
    return run_cx


@pytest.fixture
def diags() -> Any:
    return diagnostics
