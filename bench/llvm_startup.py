"""Start-up of ``cxpar run --backend llvm`` vs ``cxpar run`` (issue 24: programs without
eligible loops start no slower than ≤ 1.05× the python backend).

Whole-process wall time of ``cxpar run --clock virtual FILE``, each a fresh process,
variants interleaved (the order rotates every repetition), after one warm-up run of each
(Lark's grammar cache, the OS page cache, the object cache, Python's byte code). Python
byte code is written to a private ``PYTHONPYCACHEPREFIX`` even when the environment says
``PYTHONDONTWRITEBYTECODE``: an installed cxpar has its ``.pyc`` files, and compiling
every module from source at each start (≈ 0.2 s here) would hide the difference.

* ``llvm_startup.FILE``: ``--backend llvm`` (tiered routing, the default) vs the python
  backend, for a hello world and ``examples/support_triage.cx`` (neither has a loop to
  lift, both route a few events). ``ratio`` is of the medians; ``extra.paired_ratio`` is
  the median of the per-repetition ratios and ``extra.cpu_ratio`` the same for the
  processes' CPU time (user + system), less sensitive to the machine's load.
* ``llvm_startup.FILE.router_at_start``: the llvm backend as it was before tiered routing
  (``CXPAR_NATIVE_ROUTING_AFTER=0``: llvmlite imported and the router loaded from the
  object cache before the program starts) vs the python backend.
* ``llvm_startup.import_in_thread``: an idea evaluated and rejected (docs/decisions.md):
  importing llvmlite in a background thread while the front end parses
  ``examples/scoring_loops.cx`` (in-process, a fresh interpreter per repetition) vs the
  two one after the other. The parse is Python code and so is most of the import, so
  under the GIL they do not overlap; ratio > 1 means the thread made it slower.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .core import ROOT, Row, child, compare, med, skipped
from .dispatch import llvm_available
from .frontend import _cxpar_cmd

HELLO = 'on system.start {\n    print("hello");\n}\n'

VARIANTS: dict[str, tuple[list[str], dict[str, str]]] = {
    "python": (["--backend", "python"], {}),
    "llvm": (["--backend", "llvm"], {}),
    "llvm_router_at_start": (["--backend", "llvm"], {"CXPAR_NATIVE_ROUTING_AFTER": "0"}),
}


def _one(path: Path, variant: str, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one ``cxpar run`` process."""
    args, extra = VARIANTS[variant]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(_cxpar_cmd() + ["run", *args, "--clock", "virtual", str(path)],
                          cwd=ROOT, capture_output=True, text=True, env={**env, **extra},
                          timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"cxpar run {' '.join(args)} {path} failed: {proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def startup(path: Path, reps: int, tmp: Path) -> list[Row]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(tmp / "pyc"), CXPAR_CACHE_DIR=str(tmp / "cache"))
    for v in VARIANTS:  # warm-up
        _one(path, v, env)
    wall: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    for r in range(reps):
        k = r % len(order)
        for v in order[k:] + order[:k]:
            w, c = _one(path, v, env)
            wall[v].append(w)
            cpu[v].append(c)

    def paired(a: str, b: str, xs: dict[str, list[float]]) -> float:
        return round(med([x / y for x, y in zip(xs[a], xs[b], strict=True)]), 3)

    params = {"file": path.name if path.parent == ROOT / "examples" else "hello.cx"}
    name = f"llvm_startup.{params['file'].removesuffix('.cx')}"
    return [
        compare(name, params, wall["llvm"], wall["python"], "s",
                baseline_name="python backend (cxpar run)", target="ratio ≤ 1.05",
                check=lambda x: x <= 1.05, paired_ratio=paired("llvm", "python", wall),
                cpu_ratio=paired("llvm", "python", cpu),
                note="tiered routing: no loop to lift, too few routings to JIT the router"),
        compare(f"{name}.router_at_start", params, wall["llvm_router_at_start"],
                wall["python"], "s", baseline_name="python backend (cxpar run)",
                paired_ratio=paired("llvm_router_at_start", "python", wall),
                cpu_ratio=paired("llvm_router_at_start", "python", cpu),
                note="CXPAR_NATIVE_ROUTING_AFTER=0: llvmlite + router loaded at start "
                     "(the llvm backend before tiered routing)"),
    ]


def front_end_and_import(threaded: bool) -> float:
    """(child) ms to analyse scoring_loops.cx and import + initialise llvmlite, in a
    background thread during the analysis or after it."""
    import threading

    import cxpar.api
    import cxpar.codegen.module
    import cxpar.commands.run  # noqa: F401 - what `cxpar run` has imported by then
    from cxpar.codegen.llvm import jit
    from cxpar.driver import front_end

    path = ROOT / "examples" / "scoring_loops.cx"
    t0 = time.perf_counter()
    thread = threading.Thread(target=jit.load_llvmlite) if threaded else None
    if thread is not None:
        thread.start()
    front_end(path, path.name)
    if thread is not None:
        thread.join()
    else:
        jit.load_llvmlite()
    return (time.perf_counter() - t0) * 1000


def import_in_thread(reps: int) -> Row:
    seq: list[float] = []
    par: list[float] = []
    for r in range(reps):
        for threaded in ((False, True) if r % 2 == 0 else (True, False)):
            ms = child("llvm_startup", "front_end_and_import", threaded=threaded)
            (par if threaded else seq).append(ms)
    return compare("llvm_startup.import_in_thread", {"file": "scoring_loops.cx"}, par, seq,
                   "ms", baseline_name="front end, then the llvmlite import",
                   note="rejected: the GIL serialises them (docs/decisions.md)")


def run(mode: str) -> list[Row]:
    why = llvm_available()
    if why is not None:
        return [skipped("llvm_startup.hello", {}, why, target="ratio ≤ 1.05")]
    reps = {"tiny": 1, "quick": 8, "full": 20}[mode]
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        hello = Path(tmp) / "hello.cx"
        hello.write_text(HELLO, encoding="utf-8")
        for path in (hello, ROOT / "examples" / "support_triage.cx"):
            rows.extend(startup(path, reps, Path(tmp)))
    rows.append(import_in_thread(reps))
    return rows


if __name__ == "__main__":
    from .__main__ import main

    sys.exit(main(["--only", "llvm_startup", *sys.argv[1:]]))
