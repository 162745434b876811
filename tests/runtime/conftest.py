"""Helpers: run hand-built programs (what generated code does) on the virtual clock."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest

from cxpar.runtime import run_program


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run(main: Any, **kw: Any) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = run_program(main, stdout=out, stderr=err, **kw)
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cx() -> Any:
    return run
