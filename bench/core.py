"""Shared pieces: result rows, statistics, compiling CX in-process, child processes."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Benchmark sizes: "tiny" (tests), "quick" (< 2 min), "full" (< 15 min).
MODES = ("tiny", "quick", "full")


@dataclass
class Row:
    """One result: ``value`` (median of ``reps``) vs ``baseline`` (median) and their ratio."""

    name: str
    params: dict[str, Any]
    value: float | None
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    spread: list[float] | None = None           # [min, max] of the repetitions
    baseline_spread: list[float] | None = None
    reps: int = 0
    baseline_name: str = ""
    target: str = ""                            # e.g. "ratio <= 2" (SPEC §8)
    met: bool | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def med(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))


def spread(xs: Sequence[float]) -> list[float]:
    return [float(min(xs)), float(max(xs))]


def compare(name: str, params: dict[str, Any], values: Sequence[float],
            base: Sequence[float] | None, unit: str, *, baseline_name: str = "",
            target: str = "", check: Callable[[float], bool] | None = None,
            on: str = "ratio", note: str = "", **extra: Any) -> Row:
    """A row from raw repetitions: medians, spreads, ratio and target check.

    ``check`` is applied to the ratio (``on="ratio"``) or the value (``on="value"``).
    """
    v = med(values)
    b = med(base) if base else None
    ratio = (v / b) if (b is not None and b > 0) else None
    met = None
    if check is not None:
        x = ratio if on == "ratio" else v
        met = bool(check(x)) if x is not None else None
    return Row(name, params, v, unit, b, ratio, spread(values),
               spread(base) if base else None, len(values), baseline_name, target, met,
               note, dict(extra))


def skipped(name: str, params: dict[str, Any], why: str, *, target: str = "") -> Row:
    return Row(name, params, None, "", note=f"skipped: {why}", target=target)


# ---------------------------------------------------------------- CX programs

def compile_cx(text: str, name: str = "bench.cx") -> Any:
    """Parse, analyse and compile CX source; returns the program factory."""
    from cxpar.codegen.module import compile_program
    from cxpar.driver import front_end_source
    from cxpar.span import SourceFile

    fe = front_end_source(SourceFile(name, text))
    errors = [d for d in fe.diagnostics if d.is_error]
    if errors or fe.compilation is None:
        raise RuntimeError(f"benchmark program does not compile: {errors}")
    compiled = compile_program(fe.compilation)
    compiled.compilation = fe.compilation  # for the llvm backend's ``prepare``
    return compiled


def run_cx(compiled: Any, body: Callable[[Any], Any], *, clock: str = "real") -> Any:
    """Run a compiled program whose top level registers handlers, then ``await body(rt)``.

    ``body`` is what a CX caller does (one ``rt.service`` call, exactly the call the
    python backend generates); timing it from Python gives ``perf_counter`` precision
    (uvloop's ``loop.time()``, behind CX ``now()``, has 1 ms resolution).
    """
    import io

    from cxpar.runtime import run_program
    from cxpar.runtime.settings import RunSettings

    holder: list[Any] = []
    result: list[Any] = []

    def setup(rt: Any) -> None:
        holder.append(compiled.program(rt))

    async def main(rt: Any) -> None:
        await holder[0](rt)
        result.append(await body(rt))

    err = io.StringIO()
    out = io.StringIO()
    code = run_program(main, RunSettings(clock=clock, timeout_ms=None), spans=compiled.spans,
                       sources=compiled.sources, stdout=out, stderr=err, setup=setup)
    if code != 0:
        raise RuntimeError(f"benchmark program failed (exit {code}): {err.getvalue()[:2000]}")
    return result[0] if result else None


# ---------------------------------------------------------------- child processes

def child(bench: str, func: str, timeout: float = 900, **args: Any) -> Any:
    """Run ``bench.<bench>.<func>(**args)`` in a fresh interpreter; returns its JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run(
        [sys.executable, "-m", "bench._child", bench, func, json.dumps(args)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child bench.{bench}.{func}({args}) failed "
                           f"(exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last)
