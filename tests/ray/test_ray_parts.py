"""The Ray executor's pure parts: shares of a global limit, chunk sizes, merged stats."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cxpar.runtime.executors.ray import chunk_size, shares


@given(st.integers(1, 10_000), st.integers(1, 64))
def test_shares_add_up_and_differ_by_at_most_one(total: int, parts: int) -> None:
    got = shares(total, parts)
    assert sum(x or 0 for x in got) == total and len(got) == parts
    assert max(x or 0 for x in got) - min(x or 0 for x in got) <= 1


def test_no_limit_is_no_limit_for_every_worker() -> None:
    assert shares(None, 3) == [None, None, None]


@given(st.integers(1, 100_000))
def test_chunks_are_small(slots: int) -> None:
    assert 1 <= chunk_size(slots) <= 8


def test_progress_and_dashboard_show_each_workers_throughput() -> None:
    from cxpar.runtime.dashboard import Monitor
    from cxpar.runtime.streams import Progress

    counts = Progress(100, 0)
    assert "workers" not in counts.line()  # the local executor: no workers
    counts.workers.update({"w1": 30, "w2": 10})
    counts.done = 40
    line = counts.line()
    assert "; workers w1 " in line and ", w2 " in line and "/s" in line
    from cxpar.runtime.tracing import Recorder

    snap = Monitor(Recorder(), batch=counts).snapshot()
    assert snap["workers"]["w1"]["done"] == 30 and snap["workers"]["w2"]["done"] == 10
    assert snap["workers"]["w1"]["rate"] > snap["workers"]["w2"]["rate"] > 0
