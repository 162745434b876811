"""The outcome of running a CX program in a test: exit code, stdout and stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Result:
    """Exit code and captured output of one run."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def json(self, i: int = 0) -> Any:
        """Line ``i`` of stdout parsed as JSON."""
        return json.loads(self.lines[i])
