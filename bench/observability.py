"""Observability overhead: a run that records its span tree (``--stats-json``) and one
that also mirrors it into OpenTelemetry (``--otel``), against the same run recording
nothing. Ratios within one run of this benchmark (docs/performance.md, "Observability").

The program: N worker entities subscribed to ``shard.score`` (each awaits 10 ms and
returns), reached by one ``infer`` parallel handler parameter, then 20 ``think`` calls,
on the virtual clock with the sim provider — so the time measured is the runtime's and
the recorder's, not latency. ``--otel`` exports to the SDK's in-memory exporter (no
network: the OTLP/HTTP cost depends on the collector, not on cxpar).
"""

from __future__ import annotations

import gc
import io
import os
import tempfile
import time
from typing import Any

from .core import Row, child, compare, compile_cx, skipped

PROGRAM = """
object Worker {
    on shard.score (event) { await { durationMs: 10 }; return self.id; }
}
var i = 0;
while (i < N) { new Worker({ id: i }); i += 1; }
var r = infer { prompt: "aggregate", scores: shard.score, timeout: 60000 };
var k = 0;
while (k < 20) { var t = think { prompt: "step " + k }; k += 1; }
"""

VARIANTS = ("off", "stats", "otel")


def measure(n: int, reps: int) -> dict[str, list[float]]:
    """(child) Wall seconds per run, per variant, alternating the order."""
    import cxpar.otel as otel
    from cxpar.runtime.settings import RunSettings
    from cxpar.runtime.standalone import run_factory

    compiled = compile_cx(PROGRAM.replace("N", str(n)))
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported: list[int] = []
    original = otel.start

    def start(recorder: Any, settings: Any, provider: Any) -> Any:
        mem = InMemorySpanExporter()
        exp = original(recorder, settings, provider, exporter=mem)
        recorder.on_close.append(lambda: exported.append(len(mem.get_finished_spans())))
        return exp

    otel.start = start  # type: ignore[assignment]
    out: dict[str, list[float]] = {v: [] for v in VARIANTS}
    tmp = tempfile.mkdtemp()
    for r in range(reps + 1):
        order = VARIANTS if r % 2 else tuple(reversed(VARIANTS))
        for v in order:
            s = RunSettings(clock="virtual", timeout_ms=None,
                            stats_json=os.path.join(tmp, "s.json") if v != "off" else None,
                            otel=v == "otel")
            gc.collect()
            t0 = time.perf_counter()
            code = run_factory(compiled.program, compiled.spans, compiled.sources, s,
                               stdout=io.StringIO(), stderr=io.StringIO())
            wall = time.perf_counter() - t0
            if code != 0:
                raise RuntimeError(f"benchmark run failed (exit {code})")
            if r:
                out[v].append(wall)
    out["spans_exported"] = [float(exported[-1])] if exported else [0.0]
    return out


def run(mode: str) -> list[Row]:
    from cxpar.otel import available

    n = {"tiny": 200, "quick": 5000, "full": 20000}[mode]
    reps = {"tiny": 1, "quick": 3, "full": 5}[mode]
    if available() is not None:
        return [skipped("observability.stats_overhead", {"workers": n},
                        "the otel extra is not installed (pip install 'cxpar[otel]')")]
    res = child("observability", "measure", n=n, reps=reps)
    params = {"workers": n, "think_calls": 20}
    return [
        compare("observability.stats_overhead", params, res["stats"], res["off"], "s",
                baseline_name="same run, recording nothing",
                note="span tree + --stats-json written"),
        compare("observability.otel_overhead", params, res["otel"], res["off"], "s",
                baseline_name="same run, recording nothing",
                note=f"--otel to the in-memory exporter, "
                     f"{int(res['spans_exported'][0])} spans per run"),
    ]
