"""Program-aware scheduling in the runtime (issue 17): ``--schedule program`` vs ``fifo``.

``python -m bench.schedule`` runs CX batch programs through the real command line
(``cxpar run --input … --clock virtual --max-concurrency N --trace …``), once per
policy, and reads every stream's start and end from the trace. Virtual time: the
numbers are exact and identical on every machine and every run (no noise), so one run
of each policy is the measurement. Shapes (the first is the issue's target):

- ``target``: 100 streams × 1–4 rounds (seeded) of ``think`` fanning out to two branches
  that each call ``infer``; ``--max-concurrency 8``, ``--streams 100``;
- ``wide``: 100 streams × 1–3 rounds of ``adapt`` with four branches that each call
  ``infer`` then ``learn``; limit 16;
- ``arrivals``: 400 records through ``--streams 100`` (a stream starts when one ends) ×
  1–6 rounds of ``think`` with one ``infer`` branch; limit 4 (stream completion =
  its own latency);
- ``whale``: the target, but the first stream also fans out to 400 worker entities that
  each call ``infer`` (a heavy program among light ones);
- ``single``: one program (no batch): a ``think`` whose branches reach 56 entities that
  make one ``infer`` call and 4 that make a chain of 8; makespan only.

Reported per shape: mean and p99 stream completion time and makespan for both
policies, their ratios, and the makespan against the lower bound
max(total model time / limit, longest stream critical path).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import ROOT, Row

ROUNDS = """
on input.record (e) {{
    var failed = 0;
    {prelude}
    var i = 0;
    while (i < e.rounds) {{
        var r = {svc} {{ prompt: "q" + i{branches} }};
        failed += len(keys(r._errors || {{}}));
        i += 1;
    }}
    emit output.record {{ id: e.id, failed: failed }};
}}
"""

TARGET = ROUNDS.format(prelude="", svc="think", branches=", a: side.a, b: side.b") + """
on side.a (e) { var x = infer { prompt: "a " + e.prompt }; return x.result; }
on side.b (e) { var x = infer { prompt: "b " + e.prompt }; return x.result; }
"""

WIDE = ROUNDS.format(prelude="", svc="adapt",
                     branches=", a: step.a, b: step.b, c: step.c, d: step.d") + "".join(
    f"on step.{k} (e) {{ var x = infer {{ prompt: e.prompt }}; "
    f"var y = learn {{ text: x.result }}; return y.result; }}\n" for k in "abcd")

ARRIVALS = ROUNDS.format(prelude="", svc="think", branches=", a: side.a") + """
on side.a (e) { var x = infer { prompt: "a " + e.prompt }; return x.result; }
"""

WHALE = ROUNDS.format(prelude="""
    if (e.fan > 0) {
        var k = 0;
        while (k < e.fan) { new Worker({ n: k }); k += 1; }
        var big = think { prompt: "split", parts: shard.work };
        failed += len(keys(big._errors || {}));
    }""", svc="think", branches=", a: side.a, b: side.b") + """
on side.a (e) { var x = infer { prompt: "a " + e.prompt }; return x.result; }
on side.b (e) { var x = infer { prompt: "b " + e.prompt }; return x.result; }
object Worker {
    on shard.work (e) { var x = infer { prompt: "part " + self.n }; return x.result; }
}
"""

SINGLE = """
object Short { on work.short (e) { var x = infer { prompt: "s" }; return 1; } }
object Long {
    on work.long (e) {
        var a = infer { prompt: "1" }; var b = infer { prompt: "2" };
        var c = infer { prompt: "3" }; var d = infer { prompt: "4" };
        var f = infer { prompt: "5" }; var g = infer { prompt: "6" };
        var h = infer { prompt: "7" }; var k = infer { prompt: "8" };
        return 8;
    }
}
var n = 0;
while (n < 56) { new Short(); n += 1; }
n = 0;
while (n < 4) { new Long(); n += 1; }
var r = think { prompt: "p", short: work.short, long: work.long };
print(len(keys(r._errors || {})));
"""

LATENCY = {"think": 800.0, "infer": 300.0, "adapt": 400.0, "learn": 200.0}


@dataclass
class Shape:
    name: str
    program: str
    records: list[dict[str, Any]]
    limit: int
    streams: int
    #: Model time of each stream's calls and its critical path (ms), for the bound.
    work: list[float]
    critical: list[float]

    def lower_bound(self) -> float:
        return max(sum(self.work) / self.limit, max(self.critical))


def shapes(scale: float = 1.0) -> list[Shape]:
    rng = random.Random(17)
    n = max(4, int(100 * scale))
    rounds = [rng.randint(1, 4) for _ in range(n)]
    target = Shape("target", TARGET, [{"id": i, "rounds": r} for i, r in enumerate(rounds)],
                   8, 100, [r * 1400.0 for r in rounds], [r * 800.0 for r in rounds])
    rw = [rng.randint(1, 3) for _ in range(n)]
    wide = Shape("wide", WIDE, [{"id": i, "rounds": r} for i, r in enumerate(rw)], 16, 100,
                 [r * 2400.0 for r in rw], [r * 500.0 for r in rw])
    ra = [rng.randint(1, 6) for _ in range(4 * n)]
    arrivals = Shape("arrivals", ARRIVALS, [{"id": i, "rounds": r} for i, r in enumerate(ra)],
                     4, n, [r * 1100.0 for r in ra], [r * 800.0 for r in ra])
    fan = max(8, int(400 * scale))
    whale = Shape("whale", WHALE,
                  [{"id": i, "rounds": r, "fan": fan if i == 0 else 0}
                   for i, r in enumerate(rounds)], 8, 100,
                  [r * 1400.0 + (800 + fan * 300.0 if i == 0 else 0)
                   for i, r in enumerate(rounds)],
                  [r * 800.0 + (800.0 if i == 0 else 0) for i, r in enumerate(rounds)])
    single = Shape("single", SINGLE, [], 8, 1, [800 + 56 * 300.0 + 4 * 8 * 300.0],
                   [8 * 300.0])
    return [target, wide, arrivals, whale, single]


@dataclass
class Outcome:
    latencies: list[float]
    makespan: float
    #: Failed keys (timeouts…) over all streams: must be 0 for the comparison to hold.
    failed: int

    @property
    def mean(self) -> float:
        return sum(self.latencies) / len(self.latencies)

    def p99(self) -> float:
        xs = sorted(self.latencies)
        return xs[max(0, -(-99 * len(xs) // 100) - 1)]


def run_shape(shape: Shape, policy: str, work: Path) -> Outcome:
    """One run of ``cxpar run`` for ``shape`` under ``policy``; stream times from the trace."""
    prog = work / f"{shape.name}.cx"
    prog.write_text(shape.program, encoding="utf-8")
    trace = work / f"{shape.name}-{policy}.json"
    lat = ",".join(f"{k}={v:g}" for k, v in LATENCY.items())
    args = [sys.executable, "-m", "cxpar", "run", str(prog), "--clock", "virtual",
            "--latency", lat, "--max-concurrency", str(shape.limit),
            "--limits", f"schedule={policy}", "--trace", str(trace)]
    if shape.records:
        records = work / f"{shape.name}.jsonl"
        records.write_text("".join(json.dumps(r) + "\n" for r in shape.records))
        args += ["--input", str(records), "--streams", str(shape.streams), "--no-progress"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"{shape.name}/{policy} failed: {proc.stderr[-2000:]}")
    events = json.loads(trace.read_text())["traceEvents"]
    spans = [e for e in events if e.get("ph") == "X"]
    streams = [e for e in spans if e["cat"] == "stream"]
    end = max((e["ts"] + e["dur"]) / 1000 for e in spans)
    if not streams:  # a single run: the program is the one stream
        return Outcome([end], end, int(proc.stdout.split()[-1]))
    failed = sum(json.loads(line)["output"]["failed"] for line in proc.stdout.splitlines())
    return Outcome([e["dur"] / 1000 for e in streams], end, failed)


def measure(shape: Shape) -> dict[str, Outcome]:
    with tempfile.TemporaryDirectory() as d:
        return {p: run_shape(shape, p, Path(d)) for p in ("fifo", "program")}


def rows_for(shape: Shape, res: dict[str, Outcome]) -> list[Row]:
    f, p = res["fifo"], res["program"]
    params = {"limit": shape.limit, "streams": len(shape.records) or 1}
    out = []
    if shape.records:
        out.append(Row(f"schedule.{shape.name}.mean_completion", params, p.mean / 1000, "s",
                       f.mean / 1000, p.mean / f.mean, reps=1, baseline_name="fifo",
                       **_target(shape.name, "ratio <= 0.8", p.mean / f.mean <= 0.8)))
        out.append(Row(f"schedule.{shape.name}.p99_completion", params, p.p99() / 1000, "s",
                       f.p99() / 1000, p.p99() / f.p99(), reps=1, baseline_name="fifo"))
    out.append(Row(f"schedule.{shape.name}.makespan", params, p.makespan / 1000, "s",
                   f.makespan / 1000, p.makespan / f.makespan, reps=1, baseline_name="fifo",
                   **_target(shape.name, "ratio <= 1.05", p.makespan / f.makespan <= 1.05),
                   extra={"lower_bound_s": shape.lower_bound() / 1000}))
    return out


def _target(shape: str, target: str, met: bool) -> dict[str, Any]:
    """The issue's targets apply to the target shape; the others report ratios only."""
    return {"target": target, "met": met} if shape == "target" else {}


def run(mode: str) -> list[Row]:
    """Rows for ``python -m bench`` (``tiny``: small shapes, for the test suite)."""
    scale = {"tiny": 0.08, "quick": 1.0, "full": 1.0}[mode]
    picked = shapes(scale)
    if mode == "tiny":
        picked = picked[:2]
    rows: list[Row] = []
    for shape in picked:
        rows += rows_for(shape, measure(shape))
    return rows


def markdown(results: list[tuple[Shape, dict[str, Outcome]]]) -> str:
    lines = ["| shape | limit | streams | mean completion s: fifo → program (×) | "
             "p99 s: fifo → program (×) | makespan s: fifo → program (×) | "
             "lower bound s | program ÷ bound | failed keys |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shape, res in results:
        f, p = res["fifo"], res["program"]
        lb = shape.lower_bound() / 1000
        mean = (f"{f.mean / 1000:.1f} → {p.mean / 1000:.1f} ({p.mean / f.mean:.2f})"
                if shape.records else "—")
        p99 = (f"{f.p99() / 1000:.1f} → {p.p99() / 1000:.1f} ({p.p99() / f.p99():.2f})"
               if shape.records else "—")
        lines.append(f"| {shape.name} | {shape.limit} | {len(shape.records) or 1} | {mean} | "
                     f"{p99} | {f.makespan / 1000:.1f} → {p.makespan / 1000:.1f} "
                     f"({p.makespan / f.makespan:.3f}) | {lb:.1f} | "
                     f"{p.makespan / 1000 / lb:.3f} | {f.failed}, {p.failed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.schedule", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated shape names")
    ns = ap.parse_args(argv)
    only = [x for x in ns.only.split(",") if x]
    results = [(s, measure(s)) for s in shapes() if not only or s.name in only]
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
