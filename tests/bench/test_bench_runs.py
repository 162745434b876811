"""Each benchmark runs end to end on tiny sizes (behaviour only, never a timing assertion)."""

from __future__ import annotations

import importlib
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.mark.parametrize("name", ["fanout", "parallel", "memory", "frontend", "vclock",
                                  "dispatch", "native_loops", "llvm_startup", "runaway",
                                  "editor", "schedsim", "schedule", "journal", "observability",
                                  "serve", "ray_executor", "models"])
def test_benchmark_runs(name: str) -> None:
    mod = importlib.import_module(f"bench.{name}")
    rows = mod.run("tiny")
    assert rows
    for row in rows:
        d = row.to_json()
        assert {"name", "params", "value", "unit", "baseline", "ratio"} <= set(d)
        if row.value is None:
            assert row.note.startswith("skipped"), row.note
        elif d["name"] == "ray.overhead_ms_per_record":
            assert math.isfinite(row.value)  # a difference of two timings: noise can be < 0
        else:
            assert row.value > 0 or name == "memory"


def test_cli_json(tmp_path: Path) -> None:
    from bench.__main__ import main

    out = tmp_path / "rows.json"
    assert main(["--tiny", "--only", "vclock", "--json", str(out)]) == 0
    import json
    data = json.loads(out.read_text())
    assert data["rows"][0]["name"] == "vclock.sim_s_per_wall_s"
