"""200 concurrent streams × 10-branch fan-outs on the virtual clock, no state leaks."""

from __future__ import annotations

from pathlib import Path

from .conftest import run_batch_cx, write_jsonl

FANOUT = """
var total = 0;           // a global: each stream has its own
var calls = 0;

object Counter {
    realize(self: object) { self.count = 0; }
    on count.bump (event) { self.count += event.by; }
}

var counter = new Counter({});

on input.record (event) {
    calls += 1;
    var r = think {
        prompt: "record " + event.id,
        b0: work.item { k: 0 }, b1: work.item { k: 1 }, b2: work.item { k: 2 },
        b3: work.item { k: 3 }, b4: work.item { k: 4 }, b5: work.item { k: 5 },
        b6: work.item { k: 6 }, b7: work.item { k: 7 }, b8: work.item { k: 8 },
        b9: work.item { k: 9 },
        timeout: 5000
    };
    var sum = 0;
    for (var key in ["b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"]) {
        sum += r[key];
    }
    emit count.bump { by: event.id };
    await { durationMs: 1 };
    emit output.record {
        id: event.id, sum: sum, branches: r._parallel.branches, ok: r._parallel.succeeded,
        total: total, calls: calls, counter: counter.count, wall: r._parallel.wall_ms
    };
}

on work.item (event) {
    total += 1;
    await { durationMs: 10 + event.k * 10 };
    return event.k * 1000 + len(event.prompt);
}
"""


def test_200_streams_with_fanouts(tmp_path: Path) -> None:
    records = [{"id": i} for i in range(400)]
    inp = write_jsonl(tmp_path / "in.jsonl", records)
    res = run_batch_cx(FANOUT, inp, streams=200)
    assert res.code == 0, res.stderr
    by = res.by_index()
    assert sorted(by) == list(range(400))
    for i, (line,) in by.items():
        out = line["output"]
        plen = len(f"record {i}")
        assert out["id"] == i
        assert out["sum"] == sum(k * 1000 + plen for k in range(10))
        assert out["branches"] == 10 and out["ok"] == 10
        # per-stream globals and entities: nothing from the other 399 streams
        assert out["total"] == 10 and out["calls"] == 1 and out["counter"] == i
        # think (800 ms) is the slowest branch: fan-out, not sum, on the virtual clock
        assert out["wall"] == 800
    again = run_batch_cx(FANOUT, inp, streams=200)
    assert again.lines == res.lines


def test_streams_share_the_global_limit(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(20)])
    prog = """
    on input.record (event) {
        var r = think { prompt: "x" };
        emit output.record { at: now() };
    }
    """
    # 20 streams, but at most 5 think calls at once across all of them: 4 waves of 800 ms
    res = run_batch_cx(prog, inp, streams=20, max_concurrency=5)
    ends = sorted(x["output"]["at"] for x in res.lines)
    assert ends == [800] * 5 + [1600] * 5 + [2400] * 5 + [3200] * 5


def test_streams_share_the_breakers(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"id": i} for i in range(30)])
    prog = """
    on input.record (event) {
        var r = think { prompt: "x" };
        emit output.record { err: r._errors.result.type };
    }
    """
    res = run_batch_cx(prog, inp, streams=1, fail_rate=1.0)
    kinds = [x["output"]["err"] for x in sorted(res.lines, key=lambda x: x["index"])]
    # five failures in five different streams open the one shared breaker
    assert kinds[:5] == ["provider"] * 5
    assert kinds[5:] == ["circuit_open"] * 25
