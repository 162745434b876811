"""``cxpar graph --limit N``: the program's makespan with at most N provider calls at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import cli

# five one-call branches and one four-call chain under a 800 ms think: the order of the
# waiting calls decides the makespan once the limit binds
FAN = """\
on work.s (e) { var x = infer { prompt: "s" }; return 1; }
on work.s (e) { var x = infer { prompt: "s" }; return 2; }
on work.s (e) { var x = infer { prompt: "s" }; return 3; }
on work.s (e) { var x = infer { prompt: "s" }; return 4; }
on work.s (e) { var x = infer { prompt: "s" }; return 5; }
on work.l (e) {
    var a = infer { prompt: "1" }; var b = infer { prompt: "2" };
    var c = infer { prompt: "3" }; var d = infer { prompt: "4" };
    return 4;
}
var r = think { prompt: "p", short: work.s, long: work.l };
print(now());
"""


@pytest.mark.parametrize("limit", [1, 2, 3, 8])
def test_estimate_matches_the_run(tmp_path: Path, limit: int) -> None:
    prog = tmp_path / "fan.cx"
    prog.write_text(FAN)
    g = cli("graph", str(prog), "--limit", str(limit), "--format", "json")
    assert g.code == 0, g.stderr
    est = json.loads(g.stdout)["limit"]
    assert est["max_concurrency"] == limit
    for policy in ("program", "fifo"):
        r = cli("run", "--clock", "virtual", "--max-concurrency", str(limit),
                "--schedule", policy, str(prog))
        assert r.code == 0, r.stderr
        assert float(r.stdout) == est[f"{policy}_ms"], (policy, r.stdout, est)
    assert est["lower_bound_ms"] <= est["program_ms"] <= est["fifo_ms"]


def test_text_output_and_bad_limit(tmp_path: Path) -> None:
    prog = tmp_path / "fan.cx"
    prog.write_text(FAN)
    g = cli("graph", str(prog), "--limit", "2")
    assert g.code == 0
    assert g.stdout.splitlines()[-2:] == [
        "with --max-concurrency 2: estimated 1800 ms (--schedule program), 2300 ms (fifo)",
        "lower bound 1750 ms = max(provider time 3500 ms / 2, critical path 1200 ms)"]
    for fmt, mark in (("mermaid", "%% with --max-concurrency 2"),
                      ("dot", "// with --max-concurrency 2")):
        assert mark in cli("graph", str(prog), "--limit", "2", "--format", fmt).stdout
    bad = cli("graph", str(prog), "--limit", "0")
    assert bad.code == 2 and "Traceback" not in bad.stderr
