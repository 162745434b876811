"""Helpers: run hand-built programs (what generated code does) on the virtual clock."""

from __future__ import annotations

import io
from typing import Any

import pytest

from cxpar.runtime import run_program
from cxpar.runtime.settings import RunSettings
from tests.support.result import Result

FIELDS = set(RunSettings.__dataclass_fields__)


def run(main: Any, **kw: Any) -> Result:
    """Run ``main``; RunSettings fields in ``kw`` (clock="virtual" by default) become the
    settings, the rest go to ``run_program`` (provider, setup, ...)."""
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("clock", "virtual")
    settings = RunSettings(**{k: kw.pop(k) for k in list(kw)
                              if k in FIELDS and k != "provider"})
    code = run_program(main, settings, stdout=out, stderr=err, **kw)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cx() -> Any:
    return run
