"""The Python API (issue 22): load, run, run_sync, batch, sessions, isolation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

import cxpar

ROOT = Path(__file__).resolve().parents[2]
TICKETS = ROOT / "examples" / "batch_tickets.cx"

COUNTER = """
var seen = 0;
/// @external
on input.record (e) {
    seen += 1;
    print("got", e.n);
    var r = think { prompt: "n=" + e.n, timeout: 5000 };
    emit output.record { n: e.n, seen: seen, answer: r.result };
}
"""


def test_load_path_and_source() -> None:
    p = cxpar.load(TICKETS)
    assert p.name == str(TICKETS)
    q = cxpar.load(str(TICKETS))
    assert q.source.text == p.source.text
    s = cxpar.load(COUNTER, name="counter.cx")
    assert s.name == "counter.cx"
    assert s.graph()["nodes"][0]["kind"] == "program"


def test_compile_error_carries_diagnostics() -> None:
    with pytest.raises(cxpar.CompileError) as info:
        cxpar.load("on a.b (e) { thnk { prompt: 1 }; }", name="bad.cx")
    err = info.value
    assert [d.code for d in err.errors] == ["CX301"]
    assert "bad.cx:1:14" in str(err) and "did you mean `think`" in str(err)


def test_missing_file_is_a_compile_error(tmp_path: Path) -> None:
    with pytest.raises(cxpar.CompileError) as info:
        cxpar.load(tmp_path / "nope.cx")
    assert info.value.errors


def test_run_sync_outputs_printed_stats() -> None:
    p = cxpar.load(COUNTER)
    r = p.run_sync({"n": 2}, clock="virtual")
    assert r.ok and r.error is None
    assert r.output == {"n": 2, "seen": 1, "answer": "[think] n=2"}
    assert r.outputs == [r.output]
    assert r.printed == ["got 2"]
    services = {row["name"]: row for row in r.stats["rows"] if row["kind"] == "service"}
    assert services["think"]["count"] == 1
    assert r.duration_ms == 800.0  # the sim's think latency on the virtual clock


def test_run_without_record_is_cxpar_run() -> None:
    p = cxpar.load('print("hello"); on system.start (e) { print("started"); }')
    r = p.run_sync(clock="virtual")
    assert r.printed == ["hello", "started"] and r.outputs == []


def test_runtime_error_stays_in_the_result() -> None:
    p = cxpar.load("/// @external\non input.record (e) { var x = e.missing.deeper; "
                   "emit output.record { x: x }; }", name="err.cx")
    r = p.run_sync({"a": 1}, clock="virtual")
    assert not r.ok and r.outputs == []
    assert r.error["type"] == "runtime" and r.error["line"] == 2
    assert r.error["file"] == "err.cx"


def test_timeout_override() -> None:
    p = cxpar.load("/// @external\non input.record (e) { await { durationMs: 5000 }; "
                   "emit output.record {}; }")
    r = p.run_sync({}, clock="virtual", timeout_ms=100)
    assert r.error["type"] == "timeout" and "100 ms" in r.error["message"]


def test_overrides_build_a_copy_and_bad_values_raise() -> None:
    p = cxpar.load(COUNTER)
    base = cxpar.RunSettings(clock="virtual", latency={"think": 10})
    r = p.run_sync({"n": 1}, base, seed=7)
    assert r.duration_ms == 10.0 and base.seed == 0
    with pytest.raises(cxpar.SettingsError, match="timeout_ms"):
        p.run_sync({"n": 1}, timeout_ms=-1)
    with pytest.raises(TypeError, match="JSON"):
        p.run_sync({"n": object()})


def test_concurrent_runs_are_isolated_and_share_a_session() -> None:
    p = cxpar.load(COUNTER)

    async def main() -> list[cxpar.RunResult]:
        async with cxpar.Runtime(cxpar.RunSettings(latency={"think": 20},
                                                   max_concurrency=5)) as rt:
            results = await asyncio.gather(*(p.run({"n": i}, runtime=rt) for i in range(40)))
            assert rt.started == 40 and rt.active == 0
            return results

    results = asyncio.run(main())
    assert [r.output["n"] for r in results] == list(range(40))
    assert all(r.output["seen"] == 1 for r in results)  # globals are per run
    assert all(r.printed == [f"got {i}"] for i, r in enumerate(results))
    assert len({r.id for r in results}) == 40


def test_session_limit_is_shared_across_runs() -> None:
    p = cxpar.load(COUNTER)
    events: list[tuple[str, float]] = []

    def listen(ev: dict) -> None:
        if ev["type"] in ("call.start", "call.end"):
            events.append((ev["type"], ev["t_ms"]))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rt = cxpar.Runtime(cxpar.RunSettings(clock="virtual", latency={"think": 100},
                                             max_concurrency=2))
        t0 = loop.time()
        await asyncio.gather(*(p.run({"n": i}, runtime=rt, listener=listen)
                               for i in range(6)))
        # 6 calls of 100 ms, 2 at a time: 300 ms on the virtual clock
        assert round((loop.time() - t0) * 1000) == 300

    from cxpar.runtime.clock import new_loop

    with asyncio.Runner(loop_factory=lambda: new_loop("virtual")) as runner:
        runner.run(main())
    assert len(events) == 12


def test_listener_sees_calls_branches_and_outputs() -> None:
    p = cxpar.load(TICKETS)
    seen: list[dict] = []
    r = p.run_sync({"id": "t", "text": "hello"}, clock="virtual", listener=seen.append)
    kinds = [e["type"] for e in seen]
    assert kinds[0] == "run.start" and kinds[-1] == "run.end"
    starts = [e for e in seen if e["type"] == "call.start"]
    assert {e["service"] for e in starts} == {"think", "infer"}  # `await` is a timer
    think = next(e for e in starts if e["service"] == "think")
    assert think["request"]["prompt"] == "Classify this ticket: hello"
    ends = [e for e in seen if e["type"] == "call.end" and e["service"] == "think"]
    assert ends[0]["answer"] == "[think] Classify this ticket: hello"
    assert {e["name"] for e in seen if e["type"] == "branch"} == \
        {"on sentiment.analyze", "on urgency.score"}
    assert [e["output"] for e in seen if e["type"] == "output"] == [r.output]
    assert any(e["type"] == "join" and e["service"] == "think" for e in seen)


def test_failed_branch_shows_in_errors_of_the_output() -> None:
    src = """
/// @external
on input.record (e) {
    var r = think { prompt: "x", check: checks.run, timeout: 5000 };
    emit output.record { failed: keys(r._errors || {}) };
}
on checks.run (e) { var boom = e.nothing.at.all; return 1; }
"""
    r = cxpar.load(src).run_sync({}, clock="virtual")
    assert r.output == {"failed": ["check"]}


def test_virtual_run_from_a_real_loop() -> None:
    p = cxpar.load(COUNTER)

    async def main() -> cxpar.RunResult:
        return await p.run({"n": 3}, clock="virtual", latency={"think": 4000})

    r = asyncio.run(main())
    assert r.duration_ms == 4000.0 and r.output["n"] == 3


def test_batch_lines_match_the_cli(tmp_path: Path) -> None:
    records = ROOT / "examples" / "batch_tickets.jsonl"
    cli = subprocess.run([sys.executable, "-m", "cxpar", "run", str(TICKETS), "--input",
                          str(records), "--clock", "virtual", "--ordered", "--no-progress"],
                         capture_output=True, text=True, check=False)
    assert cli.returncode in (0, 3), cli.stderr
    p = cxpar.load(TICKETS)

    async def main() -> list[str]:
        lines = records.read_text(encoding="utf-8").splitlines()
        return [line async for line in p.batch(lines, jsonl=True, ordered=True,
                                                streams=7, clock="virtual")]

    from cxpar.runtime.clock import new_loop

    with asyncio.Runner(loop_factory=lambda: new_loop("virtual")) as runner:
        api = runner.run(main())
    assert "".join(api) == cli.stdout


def test_batch_lines_of_a_record_with_several_outputs_match_the_cli(tmp_path: Path) -> None:
    """A record that emits `output.record` twice: the API writes the same `part`/`of`
    lines as `cxpar run --input`."""
    prog = tmp_path / "two.cx"
    prog.write_text("on input.record (r) { emit output.record { n: r.n }; "
                    "emit output.record { twice: r.n * 2 }; }\n")
    records = tmp_path / "in.jsonl"
    records.write_text('{"n": 1}\n{"n": 2}\n')
    cli = subprocess.run([sys.executable, "-m", "cxpar", "run", str(prog), "--input",
                          str(records), "--clock", "virtual", "--ordered", "--no-progress"],
                         capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stderr
    assert '"part": 2, "of": 2' in cli.stdout
    p = cxpar.load(prog)

    async def main() -> list[str]:
        lines = records.read_text(encoding="utf-8").splitlines()
        return [line async for line in p.batch(lines, jsonl=True, ordered=True,
                                                clock="virtual")]

    from cxpar.runtime.clock import new_loop

    with asyncio.Runner(loop_factory=lambda: new_loop("virtual")) as runner:
        api = runner.run(main())
    assert "".join(api) == cli.stdout


def test_batch_bad_lines_and_unordered() -> None:
    p = cxpar.load(COUNTER)

    async def main() -> list[dict]:
        items = ['{"n": 1}', "", "{oops", '{"n": 2}', b"\xff\xfe"]
        return [json.loads(line) async for line in p.batch(items, jsonl=True,
                                                           latency={"think": 1})]

    got = sorted(asyncio.run(main()), key=lambda d: d["index"])
    assert [d["index"] for d in got] == [0, 1, 2, 3]
    assert got[0]["output"]["n"] == 1 and got[2]["output"]["n"] == 2
    assert got[1]["error"]["type"] == "input" and "line 3" in got[1]["error"]["message"]
    assert "UTF-8" in got[3]["error"]["message"]


def test_cancelling_a_run_cancels_its_handlers() -> None:
    p = cxpar.load("/// @external\non input.record (e) { await { durationMs: 60000 }; "
                   "print(\"late\"); }")

    async def main() -> None:
        task = asyncio.ensure_future(p.run({}))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0)
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert not pending

    asyncio.run(main())


def test_journal_records_and_replay_answers(tmp_path: Path) -> None:
    program = cxpar.load(COUNTER)
    path = str(tmp_path / "api.journal")
    recorded = program.run_sync({"n": 4}, journal=path, clock="virtual")
    assert recorded.output["answer"] == "[think] n=4"
    # Strict replay: the recorded call is answered from the journal (the sim would fail
    # it), an unrecorded one fails with `not_recorded` instead of reaching a provider.
    replayed = program.run_sync({"n": 4}, replay=path, clock="virtual", fail_rate=1.0)
    assert replayed.output == recorded.output

    async def both() -> list[cxpar.RunResult]:
        async with cxpar.Runtime(cxpar.RunSettings(replay=path)) as rt:
            results = [await program.run({"n": n}, runtime=rt) for n in (4, 5)]
            assert rt.journal_counts == {"served": 1, "recorded": 0, "not_recorded": 1}
            return results

    hit, miss = asyncio.run(both())
    assert hit.output == recorded.output and miss.output["answer"] is None
    with pytest.raises(cxpar.JournalError):
        program.run_sync({"n": 1}, replay=str(tmp_path / "missing.journal"))
