"""Journaling overhead (issue 18; target: ≤ 5 % of wall time at 1 000 calls/s).

A batch whose records each make ``steps`` sequential ``think`` calls runs without a
journal, with ``--journal`` (every call recorded: one committed SQLite transaction per
call) and, for the resume case, with a journal that already holds every call (every
call served from it). Runs alternate within one process; each journal run starts from a
fresh file in a temporary directory.

- ``journal.wall_at_1000_calls_s``: real clock, sim latency 100 ms, 100 streams → 1 000
  provider calls/s; wall time with the journal / without (target ≤ 1.05).
- ``journal.record_cpu_us_per_call`` / ``journal.serve_cpu_us_per_call``: the same
  batch on the virtual clock (pure CPU, no waiting): CPU per call when every call is
  recorded / served, against no journal; ``extra`` has the difference and the share of
  one core it would take at 1 000 calls/s.

    python -m bench --only journal            # or: python -m bench.journal [quick|full]
"""

from __future__ import annotations

import gc
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .core import Row, child, compare, compile_cx

PROGRAM = """
on input.record (event) {
    var i = 0;
    var last = "";
    while (i < STEPS) {
        var r = think { prompt: "record " + event.n + " step " + i };
        last = r.result;
        i += 1;
    }
    emit output.record { n: event.n, last: last };
}
"""


def _batch(compiled: Any, recs: Path, clock: str, journal: Path | None,
           streams: int) -> tuple[float, float]:
    """One batch run; (wall s, CPU s)."""
    from cxpar.journal import attach
    from cxpar.runtime.providers.sim import SimProvider
    from cxpar.runtime.settings import RunSettings
    from cxpar.runtime.streams import run_batch

    provider: Any = SimProvider(0, latency_ms={"think": 100})
    session = None
    if journal is not None:
        session = attach(provider, journal=str(journal), replay=None, program="bench.cx",
                         source=PROGRAM, kind="batch")
        assert session is not None
        provider = session.provider
    settings = RunSettings(clock=clock, input=str(recs), output=os.devnull, streams=streams,
                           progress=False)
    gc.collect()
    t, c = time.perf_counter(), time.process_time()
    code = run_batch(compiled.program, compiled.spans, compiled.sources, settings,
                     provider=provider, stdout=io.StringIO(), stderr=io.StringIO())
    if session is not None:
        session.finish(code)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if code != 0:
        raise RuntimeError(f"benchmark batch failed (exit {code})")
    return wall, cpu


def measure(records: int, steps: int, streams: int, reps: int) -> dict[str, Any]:
    """(child) wall and CPU per repetition: real clock (plain, journal) and virtual clock
    (plain, journal, served)."""
    compiled = compile_cx(PROGRAM.replace("STEPS", str(steps)))
    tmp = Path(tempfile.mkdtemp(prefix="cxpar-bench-journal-"))
    try:
        recs = tmp / "recs.jsonl"
        recs.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(records)),
                        encoding="utf-8")
        out: dict[str, list[list[float]]] = {k: [] for k in (
            "real_plain", "real_journal", "virtual_plain", "virtual_journal",
            "virtual_served")}
        full = tmp / "full.db"
        _batch(compiled, recs, "virtual", full, streams)  # every call, for `served`
        for r in range(reps + 1):  # the first round warms up and is not counted
            order = ("plain", "journal") if r % 2 else ("journal", "plain")
            for kind in order:
                j = tmp / f"real-{r}.db" if kind == "journal" else None
                res = _batch(compiled, recs, "real", j, streams)
                if r:
                    out[f"real_{kind}"].append(list(res))
            for kind in (*order, "served"):
                j = None if kind == "plain" else tmp / f"virtual-{r}.db"
                if kind == "served":
                    assert j is not None
                    shutil.copy(full, j)
                res = _batch(compiled, recs, "virtual", j, streams)
                if r:
                    out[f"virtual_{kind}"].append(list(res))
        return {"calls": records * steps, **out}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(mode: str) -> list[Row]:
    records, steps, streams = {"tiny": (20, 2, 10), "quick": (400, 10, 100),
                               "full": (1000, 10, 100)}[mode]
    reps = {"tiny": 1, "quick": 3, "full": 5}[mode]
    res = child("journal", "measure", records=records, steps=steps, streams=streams,
                reps=reps)
    calls = res["calls"]
    params = {"records": records, "steps": steps, "streams": streams, "calls": calls}
    rate = streams * 10  # calls/s on the real clock: each call takes 100 ms
    rows = [compare("journal.wall_at_1000_calls_s", {**params, "calls_per_s": rate},
                    [w for w, _ in res["real_journal"]], [w for w, _ in res["real_plain"]],
                    "s", baseline_name="no journal (same batch, same process)",
                    target="ratio <= 1.05", check=lambda x: x <= 1.05,
                    cpu_journal=[c for _, c in res["real_journal"]],
                    cpu_plain=[c for _, c in res["real_plain"]])]
    plain = [c / calls * 1e6 for _, c in res["virtual_plain"]]
    for name, key, what in (("record", "virtual_journal", "every call recorded"),
                            ("serve", "virtual_served", "every call served")):
        cpu = [c / calls * 1e6 for _, c in res[key]]
        extra = [a - b for a, b in zip(cpu, plain, strict=True)]
        rows.append(compare(f"journal.{name}_cpu_us_per_call", params, cpu, plain,
                            "µs/call", baseline_name="no journal (virtual clock)",
                            note=f"CPU per call, {what}; virtual clock, no waiting",
                            extra_us_per_call=extra,
                            share_of_a_core_at_1000_per_s=[x / 1000 for x in extra]))
    return rows


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1] if len(sys.argv) > 1 else "quick"):
        print(json.dumps(row.to_json()))
