"""Rule 45: the global limit counts provider calls only, so nested calls never deadlock.

Through the real CLI on the virtual clock: the issue's nested cases (single run and
batch), and every example under ``--max-concurrency`` 1, 2 and 8.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import ROOT, cli
from .helpers import ROUNDS

EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))

NESTED = """\
on work.a (e) { var x = infer { prompt: "a" }; return 1; }
var r = think { prompt: "p", a: work.a };
print(r);
"""


def test_nested_call_under_limit_one(tmp_path: Path) -> None:
    prog = tmp_path / "nested.cx"
    prog.write_text(NESTED)
    r = cli("run", "--clock", "virtual", "--max-concurrency", "1", str(prog))
    assert r.code == 0, r.stderr
    # think (800 ms) holds the only slot; the branch's infer (300 ms) waits for it. The
    # wait is in wall_ms, never in critical_ms (rule 45): the branch's own time is 300 ms
    assert r.stdout == ('{"prompt": "p", "result": "[think] p", "a": 1, "_parallel": '
                        '{"branches": 1, "succeeded": 1, "failed": 0, "wall_ms": 1100, '
                        '"critical_ms": 800}}\n')


def test_queued_call_times_out_from_its_slot(tmp_path: Path) -> None:
    prog = tmp_path / "slot.cx"
    # infer (300 ms) waits 800 ms for think's slot; its 500 ms timeout starts at the slot
    prog.write_text('on w.a (e) { var x = infer { prompt: "a", timeout: 500 }; '
                    'return x._errors; }\n'
                    'var r = think { prompt: "p", a: w.a };\nprint(r.a);\n')
    r = cli("run", "--clock", "virtual", "--max-concurrency", "1", str(prog))
    assert (r.code, r.stdout) == (0, "null\n"), r.stderr


@pytest.mark.parametrize("limit", [1, 8])
def test_nested_calls_in_a_batch(tmp_path: Path, limit: int) -> None:
    prog = tmp_path / "batch.cx"
    prog.write_text(ROUNDS)
    records = tmp_path / "in.jsonl"
    n = 100 if limit == 8 else 10
    records.write_text("".join(json.dumps({"id": i, "rounds": 1 + i % 3}) + "\n"
                               for i in range(n)))
    r = cli("run", "--clock", "virtual", "--max-concurrency", str(limit), "--streams", "100",
            "--input", str(records), "--no-progress", str(prog))
    assert r.code == 0, r.stderr[-2000:]
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(x["index"] for x in lines) == list(range(n))
    assert all("error" not in x for x in lines)
    # work-conserving: never longer than all provider time spread over the slots
    # plus one stream's critical path (Graham's bound)
    total_ms = sum((1 + i % 3) * (800 + 2 * 300) for i in range(n))
    end = max(x["output"]["t"] for x in lines)
    assert end <= total_ms / limit + 3 * 800 + 1


def _golden_code(path: Path) -> int:
    """The example's expected exit code (``NAME.code`` next to it; absent = 0)."""
    code = path.with_suffix(".code")
    return int(code.read_text()) if code.exists() else 0


@pytest.mark.parametrize("limit", [1, 2, 8])
@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_under_a_limit(path: Path, limit: int, tmp_path: Path) -> None:
    rel = path.relative_to(ROOT).as_posix()
    free = cli("run", "--clock", "virtual", rel, trace_dir=tmp_path)
    lim = cli("run", "--clock", "virtual", "--max-concurrency", str(limit), rel,
              trace_dir=tmp_path)
    assert "internal error" not in lim.stderr
    assert lim.code == free.code == _golden_code(path), lim.stderr[-2000:]
    # no call or branch timed out that did not time out without the limit
    assert lim.errors("timeout") == free.errors("timeout")
    assert "timed out" not in lim.stderr.replace(free.stderr, "")
    # Graham's bound for a work-conserving schedule: makespan <= provider time / slots
    # + the unlimited makespan
    work = sum(e["dur"] for e in lim.spans("attempt")) / 1000  # requests hold the slots
    assert lim.end_ms <= work / limit + free.end_ms + 1


@pytest.mark.parametrize("limit", [1, 2, 8])
def test_batch_example_under_a_limit(limit: int) -> None:
    r = cli("run", "--clock", "virtual", "--max-concurrency", str(limit), "--no-progress",
            "--input", "examples/batch_tickets.jsonl", "examples/batch_tickets.cx")
    assert r.code == 0, r.stderr[-2000:]
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    # every stream ends with its output (a branch whose nested call queued past the
    # call's 2 s timeout is a failed key, not a stuck stream)
    assert len(lines) == 20 and all("output" in x for x in lines)
