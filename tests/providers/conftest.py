"""Fixtures: a fake OpenAI-compatible server on 127.0.0.1 and an in-process CX runner."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cxpar.codegen.module import compile_program
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.span import SourceFile
from tests.support.result import Result

from .fake_openai import FakeServer

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-SENTINEL-4b1d-never-print-me"


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


def run_cx(text: str, provider: Any, **kw: Any) -> Result:
    """Compile CX ``text`` and run it on the real clock with ``provider``."""
    fe = front_end_source(SourceFile("t.cx", textwrap.dedent(text)))
    errors = [d for d in fe.diagnostics if d.is_error]
    assert not errors and fe.compilation is not None, errors
    compiled = compile_program(fe.compilation)
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("timeout_ms", 20_000)
    settings = RunSettings(clock="real", **kw)
    code = run_factory(compiled.program, compiled.spans, compiled.sources, settings,
                       provider=provider, stdout=out, stderr=err)
    return Result(code, out.getvalue(), err.getvalue())


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``python -m cxpar ARGS`` with a clean provider environment (+ ``env``)."""
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, encoding="utf-8",
                          env=cli_env(env), timeout=timeout)


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a ``python -m cxpar`` child: no ``CXPAR_*`` provider settings
    of the caller's, this checkout importable, plus ``env``."""
    full = {k: v for k, v in os.environ.items()
            if not k.startswith("CXPAR_") or k == "CXPAR_DEBUG"}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    full.update(env or {})
    return full
