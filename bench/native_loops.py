"""The llvm backend's native loops (issue 24): whole-process wall time of ``cxpar run``.

* ``native_loops.numeric``: ``cxpar run --backend llvm`` on the issue's numeric loop
  (``h = (h * 31 + i) % 1000003; i += 1``, N iterations) vs ``cxpar run`` (python
  backend), each a fresh process, repetitions interleaved (``CXPAR_LOOP_LIMIT_S=3600``
  for both: the python backend's loop may run longer than the guard's 20 s). The llvm
  side runs with an empty object cache every time (``CXPAR_CACHE_DIR`` = a fresh
  directory), so its value includes importing llvmlite and JIT-compiling the router and
  the loop; the warm-cache wall time is in ``extra``. Target: ratio ≤ 0.1 at
  N = 10 000 000.
* ``native_loops.jit_ms``: the JIT alone, in-process (:func:`jit`): the loop analysis,
  IR generation, and compiling the loops module with an empty cache (``value``) and
  loading it from the cache (``extra.cached_ms``); ``extra.native_cpu_ns_per_iteration``
  is the native loop's CPU time per iteration (10 M iterations, called in chunks as the
  generated code calls it).
* ``native_loops.startup``: ``cxpar run --clock virtual --backend llvm`` on a program
  without eligible loops (``examples/support_triage.cx``) vs the same with loop lifting
  off (``CXPAR_NATIVE_LOOPS=0``, the llvm backend before issue 24). Target: ratio ≤ 1.05
  ("no slower than today"). ``extra.lift_ms``: what loop lifting itself costs there
  (the analysis that finds no loop), in-process.
* ``native_loops.startup_vs_python``: the same llvm run vs the python backend's (more
  repetitions, a hello world, and CPU time: ``bench/llvm_startup.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .core import ROOT, Row, child, compare, med, skipped
from .dispatch import llvm_available
from .frontend import _cxpar_cmd

LOOP = """\
var h = 7;
var i = 0;
while (i < {n}) {{
    h = (h * 31 + i) % 1000003;
    i += 1;
}}
print(h);
"""

NO_LOOPS = ROOT / "examples" / "support_triage.cx"


def _wall(args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    # The python backend needs more than the loop guard's default 20 s for 10 M
    # iterations on a busy machine: raise the limit (for both backends alike).
    proc = subprocess.run(_cxpar_cmd() + args, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "CXPAR_LOOP_LIMIT_S": "3600", **(env or {})},
                          timeout=3600)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cxpar {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return dt, proc.stdout


def numeric(n: int, reps: int) -> Row:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loop.cx"
        path.write_text(LOOP.format(n=n), encoding="utf-8")
        warm_cache = Path(tmp) / "warm"
        _wall(["run", "--backend", "llvm", str(path)], {"CXPAR_CACHE_DIR": str(warm_cache)})
        py, ll, warm = [], [], []
        outputs = set()
        for r in range(reps):
            order = ("python", "llvm") if r % 2 == 0 else ("llvm", "python")
            for backend in order:
                if backend == "python":
                    dt, out = _wall(["run", str(path)])
                    py.append(dt)
                else:
                    cold = Path(tmp) / f"cold{r}"
                    dt, out = _wall(["run", "--backend", "llvm", str(path)],
                                    {"CXPAR_CACHE_DIR": str(cold)})
                    ll.append(dt)
                    dtw, _ = _wall(["run", "--backend", "llvm", str(path)],
                                   {"CXPAR_CACHE_DIR": str(warm_cache)})
                    warm.append(dtw)
                outputs.add(out)
        if len(outputs) != 1:
            raise RuntimeError(f"backends disagree: {outputs}")
    return compare("native_loops.numeric", {"iterations": n}, ll, py, "s",
                   baseline_name="python backend (whole process)", target="ratio ≤ 0.1",
                   check=lambda x: x <= 0.1, warm_cache_s=round(med(warm), 3),
                   warm_cache_ratio=round(med(warm) / med(py), 4))


def jit(reps: int) -> dict[str, Any]:
    """(child) ms to analyse + generate IR, JIT with an empty cache, and load cached."""
    from cxpar.codegen.llvm import jit as jitmod
    from cxpar.codegen.llvm.backend import lift_loops, load_native_loops
    from cxpar.driver import front_end_source
    from cxpar.span import SourceFile

    jitmod.load_llvmlite()
    fe = front_end_source(SourceFile("loop.cx", LOOP.format(n=10_000_000)))
    assert fe.compilation is not None
    lift, cold, cached = [], [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["CXPAR_CACHE_DIR"] = tmp
            t0 = time.perf_counter()
            lifted = lift_loops(fe.compilation)
            lifted.ir()
            lift.append((time.perf_counter() - t0) * 1000)
            for out in (cold, cached):
                t0 = time.perf_counter()
                loops = load_native_loops(lifted)
                out.append((time.perf_counter() - t0) * 1000)
                assert loops is not None and loops.cache_hit == (out is cached)
    # The loop alone, called as the generated code calls it (CPU time: not the load).
    fn = loops[0]
    t0 = time.process_time()
    status, i, h = fn(0, 0.0, 7.0)
    while status > 0:
        status, i, h = fn(status, i, h)
    native_ns = (time.process_time() - t0) / 10_000_000 * 1e9
    return {"lift": lift, "cold": cold, "cached": cached, "native_ns": native_ns}


def lift_cost(reps: int) -> list[float]:
    """(child) ms of loop lifting on the program without loops."""
    from cxpar.codegen.llvm.backend import lift_loops
    from cxpar.driver import front_end

    fe = front_end(NO_LOOPS, NO_LOOPS.name)
    assert fe.compilation is not None
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        lift_loops(fe.compilation)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def startup(reps: int) -> list[Row]:
    variants = {"python": ["--backend", "python"], "llvm": ["--backend", "llvm"],
                "llvm_no_lifting": ["--backend", "llvm"]}
    with tempfile.TemporaryDirectory() as tmp:
        envs = {b: {"CXPAR_CACHE_DIR": tmp} for b in variants}
        envs["llvm_no_lifting"]["CXPAR_NATIVE_LOOPS"] = "0"

        def one(b: str) -> float:
            args = ["run", *variants[b], "--clock", "virtual", str(NO_LOOPS)]
            return _wall(args, envs[b])[0]

        for b in variants:  # warm-up: Lark's grammar cache, the router's object cache
            one(b)
        times: dict[str, list[float]] = {b: [] for b in variants}
        order = list(variants)
        for r in range(reps):
            for b in order[r % 3:] + order[:r % 3]:
                times[b].append(one(b))
    lift = child("native_loops", "lift_cost", reps=20)
    params = {"file": NO_LOOPS.name}
    return [
        compare("native_loops.startup", params, times["llvm"], times["llvm_no_lifting"],
                "s", baseline_name="llvm backend without loop lifting (CXPAR_NATIVE_LOOPS=0)",
                target="ratio ≤ 1.05", check=lambda x: x <= 1.05,
                lift_ms=round(med(lift), 3)),
        compare("native_loops.startup_vs_python", params, times["llvm"], times["python"],
                "s", baseline_name="python backend start-up", target="ratio ≤ 1.05",
                check=lambda x: x <= 1.05,
                note="no loop to lift: llvmlite is not imported (tiered routing); "
                     "bench/llvm_startup.py measures this with more repetitions"),
    ]


def run(mode: str) -> list[Row]:
    why = llvm_available()
    if why is not None:
        return [skipped("native_loops.numeric", {}, why, target="ratio ≤ 0.1")]
    n = {"tiny": 20_000, "quick": 1_000_000, "full": 10_000_000}[mode]
    reps = {"tiny": 1, "quick": 3, "full": 3}[mode]
    rows = [numeric(n, reps)]
    res = child("native_loops", "jit", reps=reps + 2)
    rows.append(compare("native_loops.jit_ms", {"loops": 1}, res["cold"], None, "ms",
                        note="JIT of the loops module with an empty object cache",
                        cached_ms=round(med(res["cached"]), 3),
                        native_cpu_ns_per_iteration=round(res["native_ns"], 1),
                        lift_and_ir_ms=round(med(res["lift"]), 3)))
    rows.extend(startup({"tiny": 1, "quick": 6, "full": 12}[mode]))
    return rows


if __name__ == "__main__":
    from .__main__ import main

    sys.exit(main(["--only", "native_loops", *sys.argv[1:]]))
