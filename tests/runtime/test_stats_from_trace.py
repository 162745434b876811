"""Every ``--stats-json`` number on every example, recomputed from the ``--trace`` of the
same run (issue 19: "every number must be what its header says").

The recomputation reads only the trace file: slices (``cat`` = span kind) with their
``args`` (``id``, ``parent``, ``emitted_at_ms``, ``retry_of``, ``error``, tokens).
"""

from __future__ import annotations

import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from cxpar.codegen.module import compile_program
from cxpar.driver import front_end
from cxpar.runtime.settings import RunSettings
from cxpar.runtime.standalone import run_factory
from cxpar.runtime.streams import run_batch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))
EPS_MS = 1e-6


def _compile(path: Path) -> Any:
    fe = front_end(path, str(path))
    assert fe.compilation is not None and not fe.has_errors
    return compile_program(fe.compilation)


def _run(path: Path, tmp: Path, **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    compiled = _compile(path)
    stats, trace = tmp / "stats.json", tmp / "trace.json"
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("pricing", {"sim": {"input": 3.0, "output": 15.0}})
    jsonl = path.with_suffix(".jsonl")
    settings = RunSettings(clock="virtual", stats_json=str(stats), trace=str(trace),
                           input=str(jsonl) if jsonl.exists() else None, streams=4,
                           progress=False, **kw)
    if jsonl.exists():
        run_batch(compiled.program, compiled.spans, compiled.sources, settings, stdout=out,
                  stderr=err)
    else:
        run_factory(compiled.program, compiled.spans, compiled.sources, settings,
                    stdout=out, stderr=err)
    return json.loads(stats.read_text()), json.loads(trace.read_text())["traceEvents"]


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[round(p * (len(v) - 1))]


class Trace:
    """The slices of one trace file as a tree (ids and parents from the args)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.x = [e for e in events if e["ph"] == "X"]
        self.by_id = {e["args"]["id"]: e for e in self.x}
        self.kids: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for e in self.x:
            if e["args"]["parent"] is not None:
                self.kids[e["args"]["parent"]].append(e)
        self.root = next(e for e in self.x if e["args"]["parent"] is None)

    @staticmethod
    def start(e: dict[str, Any]) -> float:
        return e["ts"] / 1000

    @staticmethod
    def end(e: dict[str, Any]) -> float:
        return (e["ts"] + e["dur"]) / 1000

    def parent(self, e: dict[str, Any]) -> dict[str, Any] | None:
        p = e["args"]["parent"]
        return None if p is None else self.by_id[p]

    def owner(self, e: dict[str, Any]) -> tuple[str, str]:
        while e["cat"] in ("attempt", "request", "join", "queue"):
            e = self.by_id[e["args"]["parent"]]
        if e["cat"] == "call":
            return "service", e["args"]["service"]
        if e["cat"] == "handler":
            return "handler", e["args"]["handler"]
        return "handler", "(top level)"

    def quiescent(self, e: dict[str, Any]) -> bool:
        return e["cat"] in ("run", "stream")

    def critical(self) -> dict[tuple[str, str], float]:
        """Owner → ms on the critical path, by a recursive walk written independently of
        cxpar.runtime.stats (same definition)."""
        per: dict[tuple[str, str], float] = defaultdict(float)

        def add(e: dict[str, Any], a: float, b: float) -> None:
            if b > a + EPS_MS:
                per[self.owner(e)] += b - a

        def members(q: dict[str, Any]) -> list[dict[str, Any]]:
            out, todo = [], list(self.kids[q["args"]["id"]])
            while todo:
                e = todo.pop()
                out.append(e)
                if not self.quiescent(e):
                    todo.extend(self.kids[e["args"]["id"]])
            return out

        def last_awaited(e: dict[str, Any], t: float,
                         seen: set[int]) -> dict[str, Any] | None:
            """The awaited child of ``e`` that ended last by ``t`` (not yet walked)."""
            cands = [k for k in self.kids[e["args"]["id"]]
                     if "emitted_at_ms" not in k["args"] and self.end(k) <= t + EPS_MS
                     and k["args"]["id"] not in seen
                     and all(self.end(k) <= self.end(s) + EPS_MS
                             for s in map(self.by_id.get, seen))]
            return max(cands, key=lambda k: (self.end(k), -self.start(k))) if cands else None

        def inside(e: dict[str, Any], t: float) -> None:
            if self.quiescent(e):
                chain(e, t)
                return
            follow = None
            nxt = e
            seen: set[int] = set()
            while True:
                if follow is not None and self.end(follow) <= t + EPS_MS \
                        and follow["args"]["id"] not in seen:
                    c = follow
                    add(nxt, self.end(c), t)  # the wait before retrying is the retry's
                else:
                    found = last_awaited(e, t, seen)
                    if found is None:
                        add(e, self.start(e), t)
                        return
                    c = found
                    add(e, self.end(c), t)
                seen.add(c["args"]["id"])
                inside(c, self.end(c))
                t = min(t, self.start(c))
                nxt = c
                r = c["args"].get("retry_of")
                follow = self.by_id[r] if r is not None else None

        def chain(q: dict[str, Any], t: float) -> None:
            ms = [m for m in members(q) if self.end(m) <= t + EPS_MS]
            if not ms:
                add(q, self.start(q), t)
                return
            x = max(ms, key=lambda m: (self.end(m), -self.start(m)))
            add(q, self.end(x), t)
            inside(x, self.end(x))
            while True:
                p = self.parent(x)
                if "emitted_at_ms" in x["args"]:
                    add(x, x["args"]["emitted_at_ms"], self.start(x))
                    tp = x["args"]["emitted_at_ms"]
                else:
                    tp = self.start(x)
                if p is None or p is q or self.quiescent(p):
                    walk_self(q, min(tp, t))
                    return
                walk_self(p, min(tp, self.end(p)))
                x = p

        def walk_self(e: dict[str, Any], t: float) -> None:
            # like inside, but a quiescent span's own awaited work only
            if not self.quiescent(e):
                inside(e, t)
                return
            seen: set[int] = set()
            while True:
                c = last_awaited(e, t, seen)
                if c is None:
                    add(e, self.start(e), t)
                    return
                add(e, self.end(c), t)
                seen.add(c["args"]["id"])
                inside(c, self.end(c))
                t = min(t, self.start(c))

        chain(self.root, self.end(self.root))
        return per


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_column_matches_the_trace(path: Path, tmp_path: Path) -> None:
    _check(*_run(path, tmp_path))


@pytest.mark.parametrize("name", ["support_triage", "batch_tickets", "nested_fanout",
                                  "retries"])
def test_every_column_matches_the_trace_under_a_limit(name: str, tmp_path: Path) -> None:
    # calls queue for the 2 slots: queued ms, and queue waits on the critical path
    _check(*_run(ROOT / "examples" / f"{name}.cx", tmp_path, max_concurrency=2,
                 fail_rate=0.3))


def _check(doc: dict[str, Any], events: list[dict[str, Any]]) -> None:
    tr = Trace(events)
    assert set(doc) == {"services", "total", "critical_path", "streams", "queues"}
    calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in tr.x:
        if e["cat"] == "call":
            calls[e["args"]["service"]].append(e)
    assert set(doc["services"]) == set(calls)
    for name, row in doc["services"].items():
        assert set(row) == {"calls", "failures", "retries", "tokens_in", "tokens_out",
                            "cost_usd", "p50_ms", "p95_ms", "queued_ms", "rate_wait_ms",
                            "ttft_ms"}
        assert 0 <= row["rate_wait_ms"] <= row["queued_ms"] + 1e-3  # a kind of queue wait
        cs = calls[name]
        assert row["calls"] == len(cs), name
        assert row["failures"] == sum(1 for c in cs
                                      if c["args"].get("error") not in (None, "cancelled"))
        attempts = [e for e in tr.x if e["cat"] == "attempt" and e["args"]["service"] == name]
        requests = [e for e in tr.x if e["cat"] == "request" and e["args"]["service"] == name]
        assert row["retries"] == sum(1 for a in attempts if a["args"]["attempt"] > 1) + \
            sum(1 for r in requests if r["args"]["request"] > 1)
        used = [e for e in attempts + requests if "tokens_in" in e["args"]]
        assert row["tokens_in"] == sum(e["args"]["tokens_in"] for e in used)
        assert row["tokens_out"] == sum(e["args"]["tokens_out"] for e in used)
        assert row["cost_usd"] == pytest.approx(
            (row["tokens_in"] * 3.0 + row["tokens_out"] * 15.0) / 1e6, abs=1e-12)
        lat = [e["dur"] / 1000 for e in (cs if name == "await" else attempts)
               if name != "await" or e["args"].get("error") is None]
        assert row["p50_ms"] == pytest.approx(_pct(lat, 0.5), abs=1e-3)
        assert row["p95_ms"] == pytest.approx(_pct(lat, 0.95), abs=1e-3)
        assert row["queued_ms"] == pytest.approx(
            sum(c["args"].get("queued_ms", 0) for c in cs), abs=1e-3)
    waits = [e for e in tr.x if e["cat"] == "queue"]
    assert sum(r["waits"] for r in doc["queues"]["services"]) == len(waits)
    for row in doc["queues"]["services"]:
        mine = [e["dur"] / 1000 for e in waits if e["args"]["service"] == row["service"]]
        assert row["waits"] == len(mine) and row["queued_ms"] == pytest.approx(
            sum(mine), abs=1e-3)
        assert row["queued_ms"] == pytest.approx(doc["services"][row["service"]]["queued_ms"],
                                                 abs=1e-3)
        assert row["max_ms"] == pytest.approx(max(mine), abs=1e-3)
    total = doc["total"]
    assert total["calls"] == sum(len(c) for c in calls.values())
    assert total["tokens_in"] == sum(r["tokens_in"] for r in doc["services"].values())
    assert total["wall_ms"] == pytest.approx(tr.root["dur"] / 1000, abs=1e-3)
    # the critical path: same total as the wall time, same split as the trace says
    crit = doc["critical_path"]
    assert crit["ms"] == pytest.approx(total["wall_ms"], abs=1e-2)
    mine = tr.critical()
    assert sum(mine.values()) == pytest.approx(total["wall_ms"], abs=1e-2)
    for name, ms in crit["services"].items():
        assert ms == pytest.approx(mine.get(("service", name), 0.0), abs=1e-2), name
    for name, ms in crit["handlers"].items():
        assert ms == pytest.approx(mine.get(("handler", name), 0.0), abs=1e-2), name
    for key, ms in mine.items():
        table = crit["services" if key[0] == "service" else "handlers"]
        assert table.get(key[1], 0.0) == pytest.approx(ms, abs=1e-2), key
    steps = crit["steps"]
    t = 0.0
    for st in steps:  # contiguous, from the run's start to its end
        assert st["start_ms"] == pytest.approx(t, abs=1e-2)
        t = st["start_ms"] + st["ms"]
    assert t == pytest.approx(total["wall_ms"], abs=1e-2)


def _speedups(doc_rows: list[dict[str, Any]], tr: Trace) -> dict[str, float]:
    """Per service: (wall + Σparts − max part) / wall over calls with a join."""
    wall: dict[str, float] = defaultdict(float)
    seq: dict[str, float] = defaultdict(float)
    for j in (e for e in tr.x if e["cat"] == "join"):
        call = tr.parent(j)
        assert call is not None
        kids = tr.kids[j["args"]["id"]]
        attempts = [k for k in kids if k["cat"] == "attempt"]
        parts = []
        if attempts:
            parts.append(max(tr.end(a) for a in attempts) - min(tr.start(a) for a in attempts))
        else:
            parts.append(0.0)
        invs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for k in kids:
            if k["cat"] == "handler":
                first = k
                while first["args"].get("retry_of") is not None:
                    first = tr.by_id[first["args"]["retry_of"]]
                invs[first["args"]["id"]].append(k)  # type: ignore[index]
        for group in invs.values():
            parts.append(max(tr.end(a) for a in group) - min(tr.start(a) for a in group))
        w = j["dur"] / 1000
        name = call["args"]["service"]
        wall[name] += w
        seq[name] += w + sum(parts) - max(parts)
    return {k: seq[k] / wall[k] for k in wall if wall[k] > 0}


@pytest.mark.parametrize("name", ["support_triage", "partial_failure", "retries",
                                  "nested_fanout", "fanout_1000"])
def test_speedup_column_matches_the_trace(name: str, tmp_path: Path) -> None:
    from cxpar.runtime.tracing import Recorder

    path = ROOT / "examples" / f"{name}.cx"
    compiled = _compile(path)
    captured: list[Recorder] = []
    trace = tmp_path / "t.json"
    orig = Recorder.write_trace

    def grab(self: Recorder, p: str) -> None:
        captured.append(self)
        orig(self, p)

    Recorder.write_trace = grab  # type: ignore[method-assign]
    try:
        run_factory(compiled.program, compiled.spans, compiled.sources,
                    RunSettings(clock="virtual", trace=str(trace)), stdout=io.StringIO(),
                    stderr=io.StringIO())
    finally:
        Recorder.write_trace = orig  # type: ignore[method-assign]
    rows = captured[0].rows()
    tr = Trace(json.loads(trace.read_text())["traceEvents"])
    expect = _speedups(rows, tr)
    for r in rows:
        if r["kind"] != "service":
            continue
        if r["name"] in expect:
            assert r["speedup"] == pytest.approx(expect[r["name"]], abs=0.01), r["name"]
            assert r["speedup"] >= 1
        else:
            assert r["speedup"] is None
