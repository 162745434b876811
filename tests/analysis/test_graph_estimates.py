"""`cxpar graph` estimates against virtual-clock runs (issue 16): timeouts bound each
attempt, retries repeat timed-out attempts, `concurrency` starts branches in waves,
literal loops are unfolded, batch programs unfold `input.record`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))


def cxpar(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def estimate(path: Path) -> dict[str, Any]:
    proc = cxpar("graph", "--format", "json", str(path))
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def virtual_run_ms(path: Path, tmp: Path) -> float:
    """When the last handler or call of a virtual-clock run ended (from its trace)."""
    trace = tmp / "trace.json"
    args = ["run", "--clock", "virtual", "--trace", str(trace)]
    records = path.with_suffix(".jsonl")
    if records.exists():
        args += ["--input", str(records), "--no-progress"]
    proc = cxpar(*args, str(path))
    assert proc.returncode in (0, 3), proc.stderr
    events = [e for e in json.loads(trace.read_text())["traceEvents"] if "ts" in e]
    return max([(e["ts"] + e.get("dur", 0)) / 1000 for e in events] or [0.0])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_estimate_within_10_percent_of_the_virtual_run(path: Path, tmp_path: Path) -> None:
    g = estimate(path)
    actual = virtual_run_ms(path, tmp_path)
    if g["unknown_durations"]:  # durations only known at run time: a lower bound
        assert g["estimated_ms"] <= actual * 1.1, (g["estimated_ms"], actual)
        return
    assert abs(g["estimated_ms"] - actual) <= 0.1 * actual, (g["estimated_ms"], actual)


def _est(tmp: Path, text: str) -> dict[str, Any]:
    (tmp / "p.cx").write_text(text, encoding="utf-8")
    return estimate(tmp / "p.cx")


def _close(tmp: Path, text: str) -> tuple[float, float]:
    (tmp / "p.cx").write_text(text, encoding="utf-8")
    return estimate(tmp / "p.cx")["estimated_ms"], virtual_run_ms(tmp / "p.cx", tmp)


@pytest.mark.parametrize("text", [
    # a timed-out branch is cut at the call's timeout, retried R times
    'on s.low (e) { await { durationMs: 5000 }; return 1; }\n'
    'var r = think { prompt: "x", v: s.low, timeout: 700, retries: 2 };\n',
    # a provider call slower than the timeout
    'var r = think { prompt: "x", timeout: 300, retries: 1 };\n',
    # a nested fan-out inside a branch that times out
    'on inner.x (e) { return infer { prompt: "i", w: wait.x }; }\n'
    'on wait.x (e) { await { durationMs: 2000 }; return 1; }\n'
    'var r = think { prompt: "x", v: inner.x, timeout: 1000 };\n',
    # concurrency waves, a loop binding the limit
    'on t.run (e) { await { durationMs: 100 }; return 1; }\n'
    'for (var c in [1, 3]) {\n'
    '  var r = iam { a: t.run, b: t.run, c: t.run, concurrency: c };\n}\n',
    # counted loops of both kinds
    'var i = 0;\nwhile (i < 4) { think { prompt: "x" + i }; i += 1; }\n'
    'for (var j = 0; j <= 2; j++) { await { durationMs: 50 }; }\n',
    # an await range counts its mean (the run draws seeded values)
    'for (var k in [1, 2, 3, 4, 5, 6, 7, 8]) { await { minDurationMs: 100, maxDurationMs: 300 }; }\n',
])
def test_model_matches_runs(tmp_path: Path, text: str) -> None:
    est, actual = _close(tmp_path, text)
    assert abs(est - actual) <= 0.1 * actual, (est, actual)


def test_unknown_await_is_a_lower_bound(tmp_path: Path) -> None:
    g = _est(tmp_path, "var ms = random() * 100;\nawait { durationMs: ms };\n"
                       "think { prompt: \"x\" };\n")
    assert g["unknown_durations"] == 1 and g["estimated_ms"] == 800
    text = cxpar("graph", str(tmp_path / "p.cx")).stdout
    assert "the estimate is a lower bound" in text


def test_batch_program_unfolds_input_record(tmp_path: Path) -> None:
    g = _est(tmp_path, "/// @external\non input.record (e) {\n"
                       "  var r = think { prompt: e.text, s: s.x };\n"
                       "  emit output.record { r: r.result };\n}\n"
                       "on s.x (e) { return infer { prompt: e.prompt }.result; }\n")
    labels = [g["nodes"][i]["label"] for i in g["critical_path"]]
    assert "input.record" in labels and "think" in labels
    assert g["estimated_ms"] == 800


def test_graph_reads_sim_latency_from_cxpar_toml(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "cxpar.toml").write_text("[sim]\nlatency = { think = 50 }\n"
                                         "[provider]\nname = \"nowhere:P\"\n", encoding="utf-8")
    g = _est(tmp_path, 'think { prompt: "x" };\n')
    assert g["estimated_ms"] == 50
    proc = cxpar("graph", "--latency", "think=70", "--format", "json", str(tmp_path / "p.cx"))
    assert json.loads(proc.stdout)["estimated_ms"] == 70
