"""Queue time (rule 45): in ``--stats`` and ``--trace``, per service and per stream, and
never in the payload."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import cli

BATCH = """\
on input.record (e) {
    var r = think { prompt: "q", a: side.a };
    emit output.record { keys: keys(r), parallel: keys(r._parallel) };
}
on side.a (e) { var x = infer { prompt: "a" }; return x.result; }
"""


def run(tmp_path: Path, *extra: str) -> tuple[str, list[dict[str, object]], list[str]]:
    prog = tmp_path / "b.cx"
    prog.write_text(BATCH)
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(6)))
    r = cli("run", "--clock", "virtual", "--max-concurrency", "2", "--no-progress",
            "--input", str(records), str(prog), *extra, trace_dir=tmp_path)
    assert r.code == 0, r.stderr
    return r.stderr, r.trace, r.stdout.splitlines()


def test_stats_show_queue_waits_per_service_and_stream(tmp_path: Path) -> None:
    err, _trace, _out = run(tmp_path, "--stats")
    assert "queue waits for a slot" in err
    lines = err.splitlines()
    think = next(x for x in lines if x.startswith("│ think") and x.count("│") == 7)
    cells = [c.strip() for c in think.split("│")[1:-1]]
    # 6 streams, 2 slots: stream k's think waits for the 2 streams before it
    assert cells[0] == "think" and int(cells[1]) > 0
    per_stream = next(x for x in lines if x.startswith("queue wait per stream"))
    assert "record 5" in per_stream


def test_trace_has_queue_spans_and_payload_has_no_queue_key(tmp_path: Path) -> None:
    _err, trace, out = run(tmp_path)
    queue = [e for e in trace if e.get("cat") == "queue"]
    assert queue and all(e["args"]["queued_ms"] == e["dur"] / 1000 for e in queue)
    for line in out:
        o = json.loads(line)["output"]
        assert o["keys"] == ["prompt", "result", "a", "_parallel"]
        assert o["parallel"] == ["branches", "succeeded", "failed", "wall_ms", "critical_ms"]
