"""Helpers: run the real CLI in-process (fast) and read its trace."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str
    trace: list[dict[str, Any]]

    def spans(self, cat: str) -> list[dict[str, Any]]:
        return [e for e in self.trace if e.get("ph") == "X" and e.get("cat") == cat]

    def errors(self, kind: str) -> int:
        """Spans that ended with error ``kind`` (e.g. ``timeout``)."""
        return sum(1 for e in self.trace if e.get("args", {}).get("error") == kind)

    @property
    def end_ms(self) -> float:
        ends = [(e["ts"] + e["dur"]) / 1000 for e in self.trace if e.get("ph") == "X"]
        starts = [e["ts"] / 1000 for e in self.trace if e.get("ph") == "X"]
        return max(ends) - min(starts) if ends else 0.0


def cli(*args: str, trace_dir: Path | None = None) -> CliRun:
    """``cxpar ARGS`` in this process (cwd = the repository), with ``--trace`` when
    ``trace_dir`` is given."""
    import os

    from cxpar.cli import main

    argv = list(args)
    trace_path = None
    if trace_dir is not None:
        trace_path = trace_dir / f"trace{len(list(trace_dir.iterdir()))}.json"
        argv += ["--trace", str(trace_path)]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.chdir(old)
    trace = []
    if trace_path is not None and trace_path.exists():
        trace = json.loads(trace_path.read_text())["traceEvents"]
    return CliRun(code, out.getvalue(), err.getvalue(), trace)
