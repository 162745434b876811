"""Dashboard overhead (docs/performance.md, "Dashboard overhead"); not a test.

    .venv/bin/python bench/dashboard_overhead.py [REPS]

Runs a 10 000-subscriber fan-out (3 rounds, 30 000 branches) and a batch of 5 000
records × 10-branch fan-outs (200 streams) on the virtual clock, each without and with
the dashboard, alternating, REPS times. The dashboard renders to a forced-terminal
console (as on a real TTY; output discarded), so every 250 ms frame is fully drawn.
Prints min and median wall and process CPU time (CPU includes the render thread).
"""

from __future__ import annotations

import gc
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

import cxpar.runtime.dashboard as dashboard
from cxpar.codegen.module import compile_program
from cxpar.driver import front_end_source
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.runtime.streams import run_batch
from cxpar.span import SourceFile

FAN = """
object Worker {
    on shard.score (event) { await { durationMs: 10 + self.id % 50 }; return self.id; }
}
var i = 0;
while (i < 10000) { new Worker({ id: i }); i += 1; }
var round = 0;
while (round < 3) {
    var r = infer { prompt: "round", scores: shard.score, timeout: 5000 };
    round += 1;
}
"""

BATCH = """
/// @external
on input.record (event) {
    var r = think { prompt: "r" + event.n, b0: w.a, b1: w.a, b2: w.a, b3: w.a, b4: w.a,
                    b5: w.a, b6: w.a, b7: w.a, b8: w.a, b9: w.a };
    emit output.record { n: event.n, ok: r._parallel.succeeded };
}
on w.a (event) { await { durationMs: 5 }; return 1; }
"""


def _compile(text: str) -> Any:
    fe = front_end_source(SourceFile("bench.cx", text))
    assert fe.compilation is not None
    return compile_program(fe.compilation)


def _timed(fn: Any) -> tuple[float, float]:
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main(reps: int) -> None:
    devnull = open(os.devnull, "w")  # noqa: SIM115
    dashboard.console_writer = lambda stream: Console(file=devnull, force_terminal=True,
                                                      width=120)
    fan, batch = _compile(FAN), _compile(BATCH)
    tmp = Path(tempfile.mkdtemp())
    recs = tmp / "recs.jsonl"
    recs.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(5000)))

    def run_fan(dash: bool) -> None:
        run_factory(fan.program, fan.spans, fan.sources,
                    RunSettings(clock="virtual", dashboard=dash),
                    stdout=io.StringIO(), stderr=io.StringIO(), critical=["infer"])

    def run_b(dash: bool) -> None:
        run_batch(batch.program, batch.spans, batch.sources,
                  RunSettings(clock="virtual", input=str(recs), output=os.devnull,
                              streams=200, progress=False, dashboard=dash),
                  stdout=io.StringIO(), stderr=io.StringIO())

    for name, fn in (("fan-out 10 000 × 3", run_fan), ("batch 5 000 × 10", run_b)):
        res: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(reps):
            for dash in (False, True):
                res[dash].append(_timed(lambda d=dash, f=fn: f(d)))  # type: ignore[misc]
        for dash, v in res.items():
            w = sorted(x[0] for x in v)
            c = sorted(x[1] for x in v)
            print(f"{name:20s} dashboard={dash!s:5s} wall min {w[0]:.3f} s median "
                  f"{w[len(w) // 2]:.3f} s | cpu min {c[0]:.3f} s median {c[len(c) // 2]:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
