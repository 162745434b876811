"""``cxpar graph --cost``: one run's tokens and cost estimated from the graph, before
running (issue 19). Where every request is literal text and every call runs exactly once,
the estimate must equal what a sim run of the same program then reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .test_settings import ROOT, cx, project

LITERAL = {
    "sequence": 'var a = think { prompt: "summarise the ticket" };\n'
                'var b = infer { prompt: "draft a reply", tone: "warm" };\n'
                'print("done");\n',
    "branches": 'on x.a (event) { var r = infer { prompt: "branch a" }; return 1; }\n'
                'on x.b (event) { await { durationMs: 50 }; return 2; }\n'
                'var r = think { prompt: "root call with branches", a: x.a, b: x.b };\n'
                'print(r.a);\n',
    "fanout_1000": (ROOT / "examples" / "fanout_1000.cx").read_text(encoding="utf-8"),
    "loops": 'for (var i = 0; i < 10; i++) { var r = think { prompt: "step" }; }\n'
             'var k = 1;\nwhile (k <= 5) { var s = infer { prompt: "odd" }; k += 2; }\n'
             'for (var x in ["a", "b"]) { var t = think { prompt: "item", n: 2 }; }\n'
             'for (var j = 3; j > 0; j -= 1) {\n'
             '    for (var m = 0; m < 2; m++) { var u = infer { prompt: "nested" }; }\n'
             '}\n',
}


def _estimate(tmp: Path, program: str, *args: str, toml: str | None = None) -> dict:
    prog = project(tmp, toml, program)
    proc = cx("graph", "--cost", "--format", "json", *args, str(prog), cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", sorted(LITERAL))
def test_estimate_equals_the_sim_runs_tokens(tmp_path: Path, name: str) -> None:
    est = _estimate(tmp_path, LITERAL[name], "--price", "3,15")
    assert est["dynamic_parts"] == 0 and est["unknown_loops"] == 0
    stats = tmp_path / "stats.json"
    proc = cx("run", "--clock", "virtual", "--price", "3,15", "--stats-json", str(stats),
              str(tmp_path / "p.cx"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(stats.read_text())
    assert (est["total"]["tokens_in"], est["total"]["tokens_out"]) \
        == (doc["total"]["tokens_in"], doc["total"]["tokens_out"]) != (0, 0)
    assert est["total"]["cost_usd"] == pytest.approx(doc["total"]["cost_usd"])
    assert est["total"]["calls"] == doc["total"]["calls"] or name == "fanout_1000"
    for svc, row in est["services"].items():
        if svc != "await":
            assert (row["tokens_in"], row["tokens_out"]) == (
                doc["services"][svc]["tokens_in"], doc["services"][svc]["tokens_out"])


def test_no_price_is_unknown_and_a_table_prices(tmp_path: Path) -> None:
    est = _estimate(tmp_path, LITERAL["sequence"])
    assert est["total"]["cost_usd"] is None
    assert all(r["cost_usd"] is None for r in est["services"].values())
    text = cx("graph", "--cost", str(tmp_path / "p.cx"), cwd=tmp_path)
    assert text.returncode == 0 and "cost unknown" in text.stdout
    assert "--price IN,OUT" in text.stdout
    est = _estimate(tmp_path, LITERAL["sequence"],
                    toml="[pricing.sim]\ninput = 2\noutput = 8\n")
    t = est["total"]
    assert t["cost_usd"] == pytest.approx((t["tokens_in"] * 2 + t["tokens_out"] * 8) / 1e6)


def test_run_time_parts_are_counted_and_said(tmp_path: Path) -> None:
    prog = 'var who = "x" + now();\nvar r = think { prompt: "hello " + who };\n'
    est = _estimate(tmp_path, prog)
    assert est["dynamic_parts"] >= 1 and est["total"]["tokens_in"] > 0
    proc = cx("graph", "--cost", str(tmp_path / "p.cx"), cwd=tmp_path)
    assert "known only at run time" in proc.stdout


def test_cost_with_a_graph_format_is_a_usage_error(tmp_path: Path) -> None:
    project(tmp_path, None, LITERAL["sequence"])
    proc = cx("graph", "--cost", "--format", "dot", str(tmp_path / "p.cx"), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = cx("graph", "--cost", "--price", "x", str(tmp_path / "p.cx"), cwd=tmp_path)
    assert proc.returncode == 2 and "--price" in proc.stderr


def test_a_loop_counted_at_run_time_is_counted_once_and_said(tmp_path: Path) -> None:
    prog = 'var n = len("abc");\nfor (var i = 0; i < n; i++) { var r = think { prompt: "p" }; }\n'
    est = _estimate(tmp_path, prog)
    assert est["unknown_loops"] == 1 and est["total"]["calls"] == 1
    proc = cx("graph", "--cost", str(tmp_path / "p.cx"), cwd=tmp_path)
    assert "1 loop whose trip count is known only at run time counted once" in proc.stdout
