"""The live dashboard renders to a non-TTY (recording) console with the expected fields."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cxpar.runtime.dashboard import Monitor, RateMeter
from cxpar.runtime.limits import CircuitBreaker, Limiter
from cxpar.runtime.streams import Progress
from cxpar.runtime.tracing import Recorder

from .conftest import ROOT, run_batch_cx, run_cli, write_jsonl


def render(mon: Monitor) -> str:
    console = Console(record=True, file=io.StringIO(), width=120, force_terminal=False)
    console.print(mon.render())
    return console.export_text()


class FakeRt:
    def __init__(self, inflight: int, handled: int, errors: int) -> None:
        self._inflight = inflight
        self.handled = handled
        self.error_count = errors


def test_monitor_view_fields() -> None:
    rec = Recorder(keep_spans=False)

    def call(service: str, seconds: float, failed: bool) -> None:
        rec.agg("service", service).durations.append(seconds)
        rec.call_done(service, failed, 0, 0.0)

    for i in range(40):
        call("think", 0.8 + i / 1000, i < 3)
        rec.invocation_done("on_item", 0.0, 0.1, i == 0)
    call("infer", 0.3, False)
    rec.queued("think", 0.0, 1.5, "record 7")
    rec.queued("think", 0.0, 0.5, "record 2")
    lim = Limiter(8)
    lim.active = 8
    breakers = {"think": CircuitBreaker(5, 10), "infer": CircuitBreaker(5, 10)}
    for _ in range(5):
        breakers["think"].failure(1.0)
    counts = Progress(total=100, skipped=10)
    counts.done, counts.failed, counts.active = 30, 2, 12
    adaptive = {"think": Limiter(3)}
    adaptive["think"].active = 2
    mon = Monitor(rec, limiter=lim, breakers=breakers, critical=["think", "infer"],
                  adaptive=adaptive,
                  batch=counts, runtimes=[FakeRt(3, 10, 1), FakeRt(2, 5, 0)])
    snap = mon.snapshot()
    assert snap["handlers"] == {"active": 5, "completed": 15 + 40, "failed": 1 + 1}
    eta = snap["streams"].pop("eta_s")
    assert eta is not None and eta > 0  # 60 records left at the rate so far
    assert snap["streams"] == {"in_flight": 12, "done": 30, "failed": 2, "total": 90}
    assert snap["breakers"] == {"think": "open", "infer": "closed"}
    assert snap["adaptive"] == {"think": {"limit": 3, "active": 2, "queued": 0}}
    think = next(s for s in snap["services"] if s["name"] == "think")
    assert think["calls"] == 40 and think["failures"] == 3
    assert round(think["p95_ms"]) == 837
    assert think["wait_p95_ms"] == 1500
    assert snap["queue"] == {"streams": 2, "mean_ms": 1000, "max_ms": 1500,
                             "max_stream": "record 7"}
    text = render(mon)
    for needle in ("cxpar dashboard", "handlers  active 5  completed 55  failed 2",
                   "streams   in flight 12  done 30/90  failed 2  ·  ETA", "limit  8/8 running",
                   "(fifo order)", "wait p95 ms", "1500.0",
                   "queue wait  2 streams waited, mean 1000 ms, longest 1500 ms (record 7)",
                   "adaptive limit think  2/3 running, 0 queued",
                   "service", "calls/s", "p95 ms", "breaker", "think", "open", "infer",
                   "closed", "critical path  think (837 ms) → infer (300 ms)"):
        assert needle in text, f"{needle!r} not in:\n{text}"


def test_tokens_per_second_and_cost_so_far() -> None:
    from cxpar.runtime.cost import meter_for
    from cxpar.runtime.providers.base import Usage
    from cxpar.runtime.settings import RunSettings

    for settings, cost, shown in ((RunSettings(), None, "cost so far unknown"),
                                  (RunSettings(price=(3.0, 15.0)), 0.0021,
                                   "cost so far $0.0021")):
        meter = meter_for(settings)
        rec = Recorder(keep_spans=False, meter=meter)
        for service in ("think", "infer"):
            u = Usage(200, 30)
            rec.agg("service", service).add_usage(u, meter.pricing.cost(u))
        mon = Monitor(rec)
        tok = mon.snapshot()["tokens"]
        assert (tok["in"], tok["out"]) == (400, 60) and tok["rate"] > 0
        assert tok["cost_usd"] == (None if cost is None else pytest.approx(cost))
        text = render(mon)
        assert "tokens    in 400  out 60" in text and "tokens/s" in text, text
        assert shown in text, text


def test_stream_done_keeps_counts() -> None:
    rt = FakeRt(0, 7, 2)
    mon = Monitor(Recorder(keep_spans=False), runtimes=[rt])
    mon.stream_done(rt)
    mon.stream_done(rt)  # twice is harmless
    assert mon.runtimes == []
    assert mon.snapshot()["handlers"] == {"active": 0, "completed": 7, "failed": 2}


def test_dashboard_in_a_batch_run(tmp_path: Path) -> None:
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(50)])
    prog = """
    on input.record (event) {
        var r = think { prompt: "n" + event.n, a: part.a };
        emit output.record { a: r.a };
    }
    on part.a (event) { await { durationMs: 5 }; return 1; }
    """
    res = run_batch_cx(prog, inp, streams=10, dashboard=True, critical=["think"])
    assert res.code == 0
    assert len(res.lines) == 50
    # non-TTY: the final frame is printed once at the end; nothing is left in flight
    assert "streams   in flight 0  done 50/50  failed 0  ·  ETA 0s" in res.stderr
    assert "tasks in flight 0" in res.stderr
    assert "completed" in res.stderr and "think" in res.stderr and "await" in res.stderr


def test_dashboard_cli_single_run() -> None:
    proc = run_cli("run", "--clock", "virtual", "--dashboard", "examples/support_triage.cx")
    assert proc.returncode == 0, proc.stderr
    expected = (ROOT / "examples" / "support_triage.out").read_text()
    assert proc.stdout == expected  # stdout unchanged
    for needle in ("cxpar dashboard", "handlers  active 0", "think", "infer", "closed",
                   "critical path", "tasks in flight 0"):
        assert needle in proc.stderr, proc.stderr


def test_calls_per_second_never_reads_zero_between_bursts() -> None:
    """Calls that finish in bursts (every 800 ms) keep a steady rate, not 0.0 between."""
    meter = RateMeter(0.0)
    rates = []
    done = 0
    for frame in range(1, 60):  # 4 Hz frames over ~15 s
        now = frame * 0.25
        done = 10 * int(now / 0.8)  # 10 calls finish at 0.8 s, 1.6 s, ...
        rates.append(meter.rate(now, done))
    assert all(r > 0 for r in rates[4:])  # from the first burst on
    assert 10 < rates[-1] < 15  # ≈ 12.5 calls/s
    assert meter.rate(30.0, done) == 0.0  # nothing for a whole window: really idle
