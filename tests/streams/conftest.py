"""Helpers for batch-stream tests: compile CX text, run a batch in-process or via the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxpar.codegen.module import compile_program
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.streams import run_batch
from cxpar.span import SourceFile

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Batch:
    code: int
    lines: list[dict[str, Any]]
    stdout: str
    stderr: str

    def by_index(self) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {}
        for line in self.lines:
            out.setdefault(line["index"], []).append(line)
        return out


def compile_cx(text: str, name: str = "batch.cx") -> Any:
    fe = front_end_source(SourceFile(name, textwrap.dedent(text)))
    assert not fe.has_errors and fe.compilation is not None, fe.diagnostics
    return compile_program(fe.compilation)


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run_batch_cx(text: str, input_path: Path, *, output: Path | None = None,
                 streams: int = 100, seed: int = 0, fail_rate: float = 0.0,
                 latency: dict[str, float] | None = None, timeout_ms: float | None = 600_000,
                 ordered: bool = False, resume: bool = False, **kw: Any) -> Batch:
    """Run ``text`` over ``input_path`` in-process on the virtual clock."""
    compiled = compile_cx(text)
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("clock", "virtual")
    kw.setdefault("guard_s", 5.0)
    provider = kw.pop("provider", None)
    critical = kw.pop("critical", ())
    settings = RunSettings(input=str(input_path),
                           output=None if output is None else str(output), streams=streams,
                           ordered=ordered, resume=resume, timeout_ms=timeout_ms,
                           progress=False, seed=seed, fail_rate=fail_rate,
                           latency=latency or {}, **kw)
    code = run_batch(compiled.program, compiled.spans, compiled.sources, settings,
                     provider=provider, stdout=out, stderr=err, critical=critical)
    text_out = output.read_text(encoding="utf-8") if output is not None else out.getvalue()
    lines = [json.loads(x) for x in text_out.splitlines() if x.strip()]
    return Batch(code, lines, out.getvalue(), err.getvalue())


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=timeout)
