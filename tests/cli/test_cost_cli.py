"""Tokens, prices, budgets and ``--stats-json`` through the real CLI (issue 19)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .test_settings import ROOT, cx, project

EXAMPLES = ROOT / "examples"
SCHEMA_SERVICE = {"calls", "failures", "retries", "tokens_in", "tokens_out", "cost_usd",
                  "p50_ms", "p95_ms", "queued_ms", "rate_wait_ms", "ttft_ms"}


def _stats(tmp: Path, *args: str, toml: str | None = None,
           program: str | None = None) -> tuple[Any, dict[str, Any]]:
    out = tmp / "stats.json"
    src = (EXAMPLES / "support_triage.cx").read_text() if program is None else program
    prog = project(tmp, toml, src)
    proc = cx("run", "--clock", "virtual", "--stats-json", str(out), *args, str(prog),
              cwd=tmp)
    return proc, json.loads(out.read_text()) if out.exists() else {}


def test_stats_json_schema_and_unknown_cost(tmp_path: Path) -> None:
    proc, doc = _stats(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert set(doc) == {"services", "total", "critical_path", "streams", "queues"}
    assert set(doc["total"]) == {"calls", "tokens_in", "tokens_out", "cost_usd", "wall_ms"}
    for row in doc["services"].values():
        assert set(row) == SCHEMA_SERVICE
        assert row["cost_usd"] is None  # no prices: unknown, never 0
    assert doc["total"]["cost_usd"] is None and doc["total"]["tokens_in"] > 0
    assert doc["streams"] is None and doc["total"]["wall_ms"] == 1000


def test_pricing_table_and_price_option(tmp_path: Path) -> None:
    toml = "[pricing.sim]\ninput = 3\noutput = 15\n"
    proc, doc = _stats(tmp_path, toml=toml)
    assert proc.returncode == 0, proc.stderr
    t = doc["total"]
    assert t["cost_usd"] == pytest.approx((t["tokens_in"] * 3 + t["tokens_out"] * 15) / 1e6)
    for row in doc["services"].values():
        assert row["cost_usd"] == pytest.approx(
            (row["tokens_in"] * 3 + row["tokens_out"] * 15) / 1e6)
    # --price prices the run's model and wins over the table
    proc, doc = _stats(tmp_path, "--price", "1,2", toml=toml)
    t = doc["total"]
    assert t["cost_usd"] == pytest.approx((t["tokens_in"] + 2 * t["tokens_out"]) / 1e6)


def test_stats_table_shows_tokens_cost_and_the_critical_path(tmp_path: Path) -> None:
    prog = project(tmp_path, "[pricing.sim]\ninput = 3\noutput = 15\n",
                   (EXAMPLES / "support_triage.cx").read_text())
    proc = cx("run", "--clock", "virtual", "--stats", str(prog), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    for needle in ("tokens in", "tokens out", "cost", "critical ms", "speedup",
                   "critical path: 1000 ms", "learn 200 -> think 800", "total: 5 calls"):
        assert needle in err, needle


PROGRAM = """
var i = 0;
var refused = 0;
while (i < 10) {
    var r = think { prompt: "summarise ticket number " + i };
    if (r._errors != null) { refused += 1; print(r._errors.result.type); }
    i += 1;
}
print(refused + " refused");
"""


def test_max_tokens_from_run_section_stops_the_run(tmp_path: Path) -> None:
    # every call has the same estimate: 16 tokens (sim: characters / 4), so the budget
    # of 50 is reached by the 4th call and the 6 after it are refused
    proc, doc = _stats(tmp_path, toml="[run]\nmax_tokens = 50\n", program=PROGRAM)
    assert proc.returncode == 3
    assert "token budget reached: 64 tokens used" in proc.stderr
    assert "--max-tokens 50" in proc.stderr
    assert "6 service calls not started" in proc.stderr
    assert "recorded only in `_errors`" not in proc.stderr  # the budget report says it
    assert proc.stdout.splitlines()[-1] == "6 refused"
    assert proc.stdout.count("budget_exceeded") == 6
    t = doc["total"]
    assert t["tokens_in"] + t["tokens_out"] == 64   # never more than the calls in flight
    assert doc["services"]["think"]["calls"] == 10
    assert doc["services"]["think"]["failures"] == 6
    assert doc["services"]["think"]["retries"] == 0


def test_max_cost_needs_a_price(tmp_path: Path) -> None:
    prog = project(tmp_path, None, PROGRAM)
    proc = cx("run", "--clock", "virtual", "--max-cost", "0.01", str(prog), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--max-cost needs the price of the run's model" in proc.stderr
    proc = cx("run", "--clock", "virtual", "--max-cost", "0.00009", "--price", "1,2",
              str(prog), cwd=tmp_path)
    assert proc.returncode == 3 and "cost budget reached" in proc.stderr
    for bad in ("--price", "x"), ("--price", "1"), ("--max-cost", "-1"), ("--max-tokens", "0"):
        proc = cx("run", "--clock", "virtual", *bad, str(prog), cwd=tmp_path)
        assert proc.returncode == 2 and bad[0] in proc.stderr, (bad, proc.stderr)


def test_batch_budget_then_resume_with_a_larger_one(tmp_path: Path) -> None:
    prog = project(tmp_path, None, (EXAMPLES / "batch_tickets.cx").read_text())
    inp, out = EXAMPLES / "batch_tickets.jsonl", tmp_path / "out.jsonl"
    args = ("run", "--clock", "virtual", "--input", str(inp), "--output", str(out),
            "--no-progress", "--streams", "2", "--ordered")
    first = cx(*args, "--max-tokens", "300", str(prog), cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "token budget reached" in first.stderr and "--resume" in first.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["index"] for x in lines) == list(range(20))
    stopped = [x["index"] for x in lines if x.get("error", {}).get("type") ==
               "budget_exceeded"]
    assert 0 < len(stopped) < 20
    done_first = {x["index"]: x for x in lines if x["index"] not in stopped}
    second = cx(*args, "--resume", "--max-tokens", "100000", str(prog), cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["index"] for x in lines) == list(range(20))  # each exactly once
    assert all("output" in x for x in lines)
    for x in lines:  # what the first run finished is kept as it was
        if x["index"] in done_first:
            assert x == done_first[x["index"]]
