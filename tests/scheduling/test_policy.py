"""The order of waiting provider calls (rule 19, SPEC §6.2): ``--schedule program|fifo``.

Unit tests drive :class:`~cxpar.runtime.schedule.Limiter` on the virtual clock; the
rest run CX through the real CLI. Virtual time makes every order and instant exact.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from cxpar.runtime.clock import new_loop
from cxpar.runtime.flows import Flow
from cxpar.runtime.schedule import QUANTUM_CALLS, Limiter

from .conftest import cli
from .helpers import ROUNDS, Req, order


def test_program_order_serves_earlier_flows_first() -> None:
    early, late = Flow("early"), Flow("late")
    reqs: list[Req] = [(0, "late-1", late, 0, None), (0, "early-1", early, 0, None),
                       (0, "late-2", late, 0, None), (0, "early-2", early, 0, None)]
    assert order(Limiter(1, policy="program"), reqs) == \
        ["early-1", "early-2", "late-1", "late-2"]
    assert order(Limiter(1, policy="fifo"), reqs) == \
        ["late-1", "early-1", "late-2", "early-2"]


def test_explicit_priority_comes_before_program_order() -> None:
    early, late = Flow("early"), Flow("late")
    reqs: list[Req] = [(0, "early", early, 0, None), (0, "late-high", late, 1, None),
                       (0, "early-low", early, -1, None)]
    assert order(Limiter(1, policy="program"), reqs) == ["late-high", "early", "early-low"]


def test_a_flow_far_past_the_quantum_moves_down_a_level() -> None:
    heavy, light = Flow("heavy"), Flow("light")
    # one finished 1 s call: the first level ends at QUANTUM_CALLS s of attained service
    heavy.attained = QUANTUM_CALLS + 1.0
    reqs: list[Req] = [(0, "heavy", heavy, 0, None), (0, "light", light, 0, None)]
    assert order(Limiter(1, policy="program"), reqs, prime=1.0) == ["light", "heavy"]
    heavy.attained = QUANTUM_CALLS - 1.0
    assert order(Limiter(1, policy="program"), reqs, prime=1.0) == ["heavy", "light"]


def test_within_a_flow_the_longer_critical_path_goes_first() -> None:
    f = Flow("one")
    short = (("infer", 1, 300.0),)
    long = (("infer", 1, 300.0), ("think", 1, 800.0))
    reqs: list[Req] = [(0, "short", f, 0, short), (0, "long", f, 0, long),
                       (0, "none", f, 0, None)]
    assert order(Limiter(1, policy="program"), reqs) == ["long", "short", "none"]
    assert order(Limiter(1, policy="fifo"), reqs) == ["short", "long", "none"]


def test_critical_paths_use_observed_latencies() -> None:
    f = Flow("one")
    infer2 = (("infer", 2, 600.0),)
    think = (("think", 1, 800.0),)
    reqs: list[Req] = [(0, "think", f, 0, think), (0, "infer2", f, 0, infer2)]
    # static estimates: think 800 ms > 2 × infer 300 ms
    assert order(Limiter(1, policy="program"), reqs) == ["think", "infer2"]
    # observed: one infer took 1 s, so 2 × infer (2 s) is the longer path now
    assert order(Limiter(1, policy="program"), reqs, prime=1.0) == ["infer2", "think"]


def test_aging_bounds_waits_without_reordering_one_window() -> None:
    early, late = Flow("early"), Flow("late")
    reqs: list[Req] = [(0, "late-old", late, 0, None), (5, "early-new", early, 0, None),
                       (5, "late-new", late, 0, None)]
    # a 10 s window: all three wait in window 0, program order holds
    assert order(Limiter(1, aging_s=10, policy="program"), reqs) == \
        ["early-new", "late-old", "late-new"]
    # a 4 s window: `late-old` (window 0) is ahead of the window-1 calls
    assert order(Limiter(1, aging_s=4, policy="program"), reqs) == \
        ["late-old", "early-new", "late-new"]


def test_a_cancelled_waiter_gives_its_place_up() -> None:
    async def go() -> list[str]:
        lim = Limiter(1, policy="program")
        await lim.acquire()
        got: list[str] = []

        async def waiter(name: str) -> None:
            await lim.acquire()
            got.append(name)
            lim.release()

        a = asyncio.ensure_future(waiter("a"))
        b = asyncio.ensure_future(waiter("b"))
        await asyncio.sleep(0)
        a.cancel()
        await asyncio.sleep(0)
        assert lim.queued == 1
        lim.release()
        await b
        assert (lim.active, lim.queued) == (0, 0)
        return got

    loop = new_loop("virtual")
    try:
        assert loop.run_until_complete(go()) == ["b"]
    finally:
        loop.close()


# ---------------------------------------------------------------- through the CLI

def batch(tmp_path: Path, *extra: str, n: int = 30) -> dict[int, float]:
    prog = tmp_path / "rounds.cx"
    prog.write_text(ROUNDS)
    records = tmp_path / "in.jsonl"
    records.write_text("".join(json.dumps({"id": i, "rounds": 1 + i % 4}) + "\n"
                               for i in range(n)))
    r = cli("run", "--clock", "virtual", "--max-concurrency", "8", "--no-progress",
            "--input", str(records), str(prog), *extra)
    assert r.code == 0, r.stderr[-2000:]
    out = [json.loads(x)["output"] for x in r.stdout.splitlines()]
    return {int(o["id"]): o["t"] for o in out}


def test_program_order_runs_the_first_streams_without_waiting(tmp_path: Path) -> None:
    prog = batch(tmp_path)
    fifo = batch(tmp_path, "--schedule", "fifo")
    # under `program` the first streams' calls never wait: each ends after its critical
    # path (1 and 2 rounds × think 800 ms); under fifo they wait behind all the others
    assert (prog[0], prog[1]) == (800, 1600)
    assert fifo[0] > 800 and fifo[1] > 1600
    # streams finish in start order, roughly: the last ones end last
    assert max(prog[i] for i in range(5)) < min(prog[i] for i in range(25, 30))


def test_schedule_from_config_and_limits(tmp_path: Path) -> None:
    fifo = batch(tmp_path, "--schedule", "fifo")
    assert batch(tmp_path, "--limits", "schedule=fifo") == fifo
    (tmp_path / "cxpar.toml").write_text('[limits]\nschedule = "fifo"\n')
    assert batch(tmp_path) == fifo
    # the command line wins over the file
    assert batch(tmp_path, "--schedule", "program")[1] == 1600


def test_bad_schedule_is_a_usage_error(tmp_path: Path) -> None:
    prog = tmp_path / "p.cx"
    prog.write_text('print("x");\n')
    r = cli("run", str(prog), "--schedule", "lifo")
    assert r.code == 2 and "lifo" in r.stderr
    (tmp_path / "cxpar.toml").write_text('[limits]\nschedule = "random"\n')
    r = cli("run", str(prog))
    assert r.code == 2 and "schedule" in r.stderr and "random" in r.stderr
    assert "Traceback" not in r.stderr


def test_queue_waits_never_count_toward_a_branch_timeout(tmp_path: Path) -> None:
    prog = tmp_path / "wait.cx"
    # think (800 ms) holds the only slot; the branch's infer waits 800 ms, then runs
    # 300 ms: the branch took 1100 ms of wall time but only 300 ms of its own
    prog.write_text('on w.a (e) { var x = infer { prompt: "a" }; return x.result; }\n'
                    'var r = think { prompt: "p", a: w.a, timeout: 1000 };\n'
                    'print(r.a, r._parallel.failed, now());\n')
    r = cli("run", "--clock", "virtual", "--max-concurrency", "1", str(prog))
    assert (r.code, r.stdout) == (0, "[infer] a 0 1100\n"), r.stderr


def test_single_program_fan_out_starts_long_chains_first(tmp_path: Path) -> None:
    prog = tmp_path / "fan.cx"
    prog.write_text("""\
object Short { on work.short (e) { var x = infer { prompt: "s" }; return 1; } }
object Long {
    on work.long (e) {
        var a = infer { prompt: "1" }; var b = infer { prompt: "2" };
        var c = infer { prompt: "3" }; var d = infer { prompt: "4" };
        print("long done", now());
        return 4;
    }
}
var n = 0;
while (n < 40) { new Short(); n += 1; }
new Long(); new Long();
var r = think { prompt: "p", short: work.short, long: work.long };
print("all done", now());
""")
    r = cli("run", "--clock", "virtual", "--max-concurrency", "4", str(prog))
    assert r.code == 0, r.stderr
    # the long chains head the critical path (4 × 300 ms): they start at once and never
    # wait; the 40 short calls fill the other slots (40 × 300 / 2 slots = 6 s)
    assert r.stdout.splitlines()[:2] == ["long done 1200", "long done 1200"]
    f = cli("run", "--clock", "virtual", "--max-concurrency", "4", "--schedule", "fifo",
            str(prog))
    fifo_end = float(f.stdout.splitlines()[-1].split()[-1])
    assert float(r.stdout.splitlines()[-1].split()[-1]) <= fifo_end


def test_the_adaptive_limiter_queues_in_the_same_order() -> None:
    from cxpar.runtime.adaptive import AdaptiveLimiter, LimitsConfig

    early, late = Flow("early"), Flow("late")
    reqs: list[Req] = [(0, "late", late, 0, None), (0, "early", early, 0, None)]
    lim = AdaptiveLimiter.from_config(LimitsConfig(initial=1, min=1))
    assert lim.policy == "program"
    assert order(lim, reqs) == ["early", "late"]
    lim = AdaptiveLimiter.from_config(LimitsConfig(initial=1, min=1, schedule="fifo"))
    assert order(lim, reqs) == ["late", "early"]
