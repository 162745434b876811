"""``--executor ray`` (issue 23) against a real local Ray cluster, through the CLI.

Each record's complete group of result lines appears exactly once and equals what the
local executor writes, with workers killed mid-run, with ``--ordered`` and
``--resume``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .conftest import ROOT, cli, groups, write_jsonl

# Per record: a provider call with two parallel handlers, a seeded random(), and one, two
# or no output lines (so groups of several lines must stay whole).
PROGRAM = """
on input.record (event) {
    var r = think { prompt: "item " + event.n, a: part.a, b: part.b };
    if (event.n % 10 == 9) { return; }
    emit output.record { n: event.n, a: r.a, b: r.b, roll: random() };
    if (event.n % 4 == 0) { emit output.record { n: event.n, second: true }; }
}
on part.a (event) { await { durationMs: 20 }; return "A"; }
on part.b (event) { var x = infer { prompt: event.prompt }; return x.result; }
"""


def _program(tmp_path: Path, text: str = PROGRAM) -> Path:
    path = tmp_path / "batch.cx"
    path.write_text(text, encoding="utf-8")
    return path


def _run(prog: Path, inp: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return cli("run", str(prog), "--input", str(inp), "--output", str(out), "--clock",
               "virtual", "--seed", "7", "--latency", "think=300,infer=50", "--no-progress",
               *extra)


def test_same_results_as_local_ordered_and_not(tmp_path: Path, ray_address: str) -> None:
    prog = _program(tmp_path)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(60)])
    text = inp.read_text().splitlines()
    text[30] = '{"n": 30,'  # a malformed line: an error record from the driver itself
    inp.write_text("\n".join(text) + "\n")
    local = _run(prog, inp, tmp_path / "local.jsonl", "--ordered")
    assert local.returncode == 3, local.stderr
    ray_ordered = _run(prog, inp, tmp_path / "ray.jsonl", "--ordered", "--executor", "ray",
                       "--ray-address", ray_address, "--workers", "2", "--streams", "8")
    assert ray_ordered.returncode == 3, ray_ordered.stderr
    assert "record 30: line 31: invalid JSON" in ray_ordered.stderr
    expected = (tmp_path / "local.jsonl").read_text()
    assert (tmp_path / "ray.jsonl").read_text() == expected
    unordered = _run(prog, inp, tmp_path / "ray2.jsonl", "--executor", "ray",
                     "--ray-address", ray_address, "--workers", "2", "--streams", "4")
    assert unordered.returncode == 3, unordered.stderr
    assert groups((tmp_path / "ray2.jsonl").read_text()) == groups(expected)
    assert '"type": "input"' in groups(expected)[30][0]


def _worker_pids() -> list[int]:
    """Processes of live cxpar Ray worker actors (Ray names them after the class)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split(None, 1)[0]) for line in out.splitlines()
            if "ray::StreamWorker" in line]


def _midway(args: list[str], out: Path, lines: int,
            act: Callable[[subprocess.Popen[str]], bool]) -> tuple[int, str]:
    """Run ``cxpar ARGS``; once ``out`` has ``lines`` lines, ``act`` on the run (until it
    says it did); the run's exit code and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "cxpar", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            done = len(out.read_text().splitlines()) if out.exists() else 0
            if done >= lines and act(proc):
                break
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr


def test_killed_worker_loses_nothing_and_duplicates_nothing(tmp_path: Path,
                                                            ray_address: str) -> None:
    # The real clock, so records take real time and a worker dies in the middle of its work.
    prog = _program(tmp_path)
    n = 80
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(n)])
    local = _run(prog, inp, tmp_path / "local.jsonl")
    assert local.returncode == 0, local.stderr
    out = tmp_path / "ray.jsonl"
    before = set(_worker_pids())
    args = ["run", str(prog), "--input", str(inp),
            "--output", str(out), "--clock", "real", "--seed", "7", "--latency",
            "think=150,infer=20", "--no-progress", "--executor", "ray", "--ray-address",
            ray_address, "--workers", "2", "--streams", "4", "--stats"]
    killed: list[int] = []

    def kill_a_worker(proc: subprocess.Popen[str]) -> bool:
        pids = set(_worker_pids()) - before
        if pids:
            killed.append(min(pids))
            os.kill(killed[0], signal.SIGKILL)
        return bool(pids)

    code, stderr = _midway(args, out, 10, kill_a_worker)
    assert killed, "the run ended before a worker could be killed"
    assert code == 0, stderr
    assert "lost with a worker" in stderr  # the --stats line: records did run again
    got = groups(out.read_text())
    want = groups((tmp_path / "local.jsonl").read_text())
    assert sorted(got) == list(range(n))
    assert got == want


def test_resume_runs_only_what_is_missing(tmp_path: Path, ray_address: str) -> None:
    prog = _program(tmp_path)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(30)])
    assert _run(prog, inp, tmp_path / "local.jsonl").returncode == 0
    out = tmp_path / "ray.jsonl"
    first = _run(prog, inp, out, "--executor", "ray", "--ray-address", ray_address,
                 "--ordered")
    assert first.returncode == 0, first.stderr
    # as if killed while writing: the first 12 lines and half of the 13th
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:12]) + lines[12][:9], encoding="utf-8")
    kept = groups("".join(lines[:12]))
    again = _run(prog, inp, out, "--executor", "ray", "--ray-address", ray_address,
                 "--resume")
    assert again.returncode == 0, again.stderr
    got = groups(out.read_text())
    assert got == groups((tmp_path / "local.jsonl").read_text())
    assert list(got)[:len(kept) - 1] == list(kept)[:len(kept) - 1]  # kept, not rerun


def _holding_server(delay_s: float) -> tuple[Any, dict[str, int]]:
    """A real OpenAI-compatible endpoint on 127.0.0.1 that answers "ok" after
    ``delay_s`` and counts the calls it holds at once (``held["max"]``)."""
    from tests.providers.fake_openai import FakeServer

    lock = threading.Lock()
    held = {"now": 0, "max": 0}

    def script(data: dict) -> str:
        with lock:
            held["now"] += 1
            held["max"] = max(held["max"], held["now"])
        time.sleep(delay_s)
        with lock:
            held["now"] -= 1
        return "ok"

    server = FakeServer().start()
    server.script = script
    return server, held


def test_max_concurrency_holds_across_all_workers(tmp_path: Path, ray_address: str) -> None:
    """A real HTTP endpoint on 127.0.0.1 counts the calls it holds at once: with
    ``--max-concurrency 3`` on 2 workers it never sees more than 3."""
    server, held = _holding_server(0.05)
    try:
        prog = _program(tmp_path, """
on input.record (event) {
    var r = think { prompt: "item " + event.n };
    emit output.record { n: event.n, result: r.result };
}
""")
        inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(40)])
        out = tmp_path / "out.jsonl"
        res = cli("run", str(prog), "--input", str(inp), "--output", str(out),
                  "--provider", "openai", "--base-url", server.base_url, "--model", "m",
                  "--max-concurrency", "3", "--streams", "20", "--no-progress",
                  "--executor", "ray", "--ray-address", ray_address, "--workers", "2")
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr
    got = groups(out.read_text())
    assert sorted(got) == list(range(40))
    assert all(json.loads(g[0])["output"]["result"] == "ok" for g in got.values())
    assert len(server.requests) == 40
    assert 2 <= held["max"] <= 3  # both workers' calls overlapped, never past the limit


def test_ctrl_c_then_resume(tmp_path: Path, ray_address: str) -> None:
    prog = _program(tmp_path)
    n = 60
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": i} for i in range(n)])
    assert _run(prog, inp, tmp_path / "local.jsonl").returncode == 0
    out = tmp_path / "ray.jsonl"
    common = ["--clock", "real", "--seed", "7", "--latency", "think=150,infer=20",
              "--no-progress", "--executor", "ray", "--ray-address", ray_address,
              "--workers", "2", "--streams", "4"]
    def ctrl_c(proc: subprocess.Popen[str]) -> bool:
        proc.send_signal(signal.SIGINT)
        return True

    code, stderr = _midway(["run", str(prog), "--input", str(inp), "--output", str(out),
                            *common], out, 5, ctrl_c)
    assert code == 130, stderr
    assert "interrupted" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    partial = groups(out.read_text())
    assert 0 < len(partial) < n
    again = cli("run", str(prog), "--input", str(inp), "--output", str(out), "--resume",
                *common)
    assert again.returncode == 0, again.stderr
    assert groups(out.read_text()) == groups((tmp_path / "local.jsonl").read_text())


def _stats(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_stats_and_trace_merge_every_worker(tmp_path: Path, ray_address: str) -> None:
    """--stats-json on Ray equals the local executor's for the same seed on the virtual
    clock (every service's and handler's counts, tokens and cost; the streams' and queues'
    tables); --trace has every stream as its own process; --stats prints the tables."""
    prog = _program(tmp_path)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(40)])
    args = ("--price", "2,8", "--fail-rate", "0")
    local = _run(prog, inp, tmp_path / "local.jsonl", *args, "--stats-json",
                 str(tmp_path / "local.json"), "--trace", str(tmp_path / "local.trace"))
    assert local.returncode == 0, local.stderr
    ray = _run(prog, inp, tmp_path / "ray.jsonl", *args, "--stats-json",
               str(tmp_path / "ray.json"), "--trace", str(tmp_path / "ray.trace"),
               "--stats", "--executor", "ray", "--ray-address", ray_address,
               "--workers", "2", "--streams", "8")
    assert ray.returncode == 0, ray.stderr
    want, got = _stats(tmp_path / "local.json"), _stats(tmp_path / "ray.json")
    for table in ("services", "streams", "queues"):
        assert got[table] == want[table], table
    for key in ("calls", "tokens_in", "tokens_out", "cost_usd"):
        assert got["total"][key] == want["total"][key], key  # type: ignore[index]
    assert want["total"]["cost_usd"] > 0  # type: ignore[index, operator]
    assert "cxpar stats: services" in ray.stderr and "ray: 2 worker(s)" in ray.stderr
    assert "on part.b" in ray.stderr  # the handlers' table, from the workers
    trace = json.loads((tmp_path / "ray.trace").read_text())["traceEvents"]
    names = {e["args"]["name"] for e in trace
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    assert {f"record {i}" for i in range(40)} <= names
    slices = [e for e in trace if e.get("ph") == "X"]
    local_slices = [e for e in json.loads((tmp_path / "local.trace").read_text())[
        "traceEvents"] if e.get("ph") == "X"]
    assert sorted(e["name"] for e in slices) == sorted(e["name"] for e in local_slices)
    assert all(e["ts"] >= 0 for e in slices)  # on the run's timeline, not before it


def test_a_budget_holds_across_workers_and_resume_finishes(tmp_path: Path,
                                                             ray_address: str) -> None:
    """--max-tokens counts every worker's tokens: the run stops near the budget as the
    local one does (records not run are budget errors, exit 3), and --resume with a
    larger budget finishes exactly the missing records."""
    prog = _program(tmp_path)
    inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(60)])
    assert _run(prog, inp, tmp_path / "local.jsonl").returncode == 0
    out = tmp_path / "ray.jsonl"
    ray = ("--executor", "ray", "--ray-address", ray_address, "--workers", "2",
           "--streams", "4")
    first = _run(prog, inp, out, *ray, "--max-tokens", "240", "--stats-json",
                 str(tmp_path / "s.json"))
    assert first.returncode == 3, first.stderr
    assert "token budget reached" in first.stderr
    assert "run again with --resume and a larger budget" in first.stderr
    got = groups(out.read_text())
    assert sorted(got) == list(range(60))
    stopped = [i for i, lines in got.items() if '"budget_exceeded"' in lines[0]]
    assert len(stopped) >= 30  # each record uses 12 tokens: ~20 fit
    spent = _stats(tmp_path / "s.json")["total"]
    tokens = spent["tokens_in"] + spent["tokens_out"]  # type: ignore[index]
    # over by at most the records already handed out when the sum crossed it (on the
    # virtual clock a worker runs them at once): 2 workers x 5 chunks of 1 record
    assert 240 <= tokens <= 240 + 2 * 5 * 12 + 12, tokens
    again = _run(prog, inp, out, *ray, "--resume", "--max-tokens", "100000")
    assert again.returncode == 0, again.stderr
    assert groups(out.read_text()) == groups((tmp_path / "local.jsonl").read_text())


def test_journal_kill_the_driver_then_resume_pays_for_no_call_twice(
        tmp_path: Path, ray_address: str) -> None:
    """--journal with Ray (the driver owns the SQLite file): SIGKILL the driver midway
    against a real OpenAI-compatible server on 127.0.0.1, then --resume: every call
    committed before the kill is served from the journal (only the calls in flight at
    the kill are paid again), and the output is the local executor's."""
    from tests.journal.test_kill_resume import (
        CALLS_PER_RECORD,
        MAX_CONCURRENCY,
        RECORDS,
        Server,
        journal_calls,
    )
    from tests.journal.test_kill_resume import (
        PROGRAM as JOURNALED,
    )

    server = Server()
    server.srv.start()
    try:
        (tmp_path / "prog.cx").write_text(JOURNALED, encoding="utf-8")
        write_jsonl(tmp_path / "in.jsonl", [
            {"id": f"R-{i}", "text": f"ticket {i}: " + "help " * (i % 5)}
            for i in range(RECORDS)])

        def args(out: str, *extra: str) -> list[str]:
            return ["run", str(tmp_path / "prog.cx"), "--provider", "openai",
                    "--base-url", server.srv.base_url, "--model", "m", "--input",
                    str(tmp_path / "in.jsonl"), "--output", str(tmp_path / out),
                    "--ordered", "--streams", "4", "--max-concurrency",
                    str(MAX_CONCURRENCY), "--no-progress", *extra]

        server.mark(None)
        ref = cli(*args("ref.jsonl"))
        assert ref.returncode == 0, ref.stderr
        one_run = server.count - server.base
        assert one_run == RECORDS * CALLS_PER_RECORD

        journal = tmp_path / "j.db"
        ray = ("--executor", "ray", "--ray-address", ray_address, "--workers", "2",
               "--journal", str(journal))
        server.mark(one_run // 3)
        proc = subprocess.Popen([sys.executable, "-m", "cxpar", *args("out.jsonl", *ray)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert server.reached.wait(timeout=180), "the run never got that far"
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode == -signal.SIGKILL, err
        deadline = time.monotonic() + 60  # Ray ends the dead driver's workers
        while _worker_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        sent = server.count - server.base
        committed = journal_calls(journal)
        assert 0 < committed < one_run
        assert 0 <= sent - committed <= MAX_CONCURRENCY, (sent, committed)

        server.mark(None)
        again = cli(*args("out.jsonl", *ray, "--resume"))
        assert again.returncode == 0, again.stderr
        assert "calls answered from it" in again.stderr  # counted by the workers
        resent = server.count - server.base
    finally:
        server.srv.stop()
    assert (tmp_path / "out.jsonl").read_text() == (tmp_path / "ref.jsonl").read_text()
    assert journal_calls(journal) == one_run  # every call recorded exactly once
    assert sent + resent == one_run + (sent - committed)  # nothing committed paid again


def test_idle_max_concurrency_slots_move_to_the_worker_whose_calls_wait(
        tmp_path: Path, ray_address: str) -> None:
    """--max-concurrency 4 on 2 workers starts as 2 + 2; one record fans out 9 calls
    while the other worker has nothing to do, so the driver moves a slot to it: a real
    HTTP endpoint on 127.0.0.1 then sees 3 calls at once (never more than 4)."""
    fan = "\n".join(f'on fan.out (event) {{ var x = infer {{ prompt: "{i}" }}; '
                    f'return x.result; }}' for i in range(8))
    server, held = _holding_server(0.4)
    try:
        prog = _program(tmp_path, """
on input.record (event) {
    if (event.n == 0) {
        var r = think { prompt: "fan", a: fan.out };
        emit output.record { n: event.n, a: r.a };
    } else {
        emit output.record { n: event.n };
    }
}
""" + fan)
        inp = write_jsonl(tmp_path / "in.jsonl", [{"n": n} for n in range(3)])
        out = tmp_path / "out.jsonl"
        res = cli("run", str(prog), "--input", str(inp), "--output", str(out),
                  "--provider", "openai", "--base-url", server.base_url, "--model", "m",
                  "--max-concurrency", "4", "--no-progress", "--stats",
                  "--executor", "ray", "--ray-address", ray_address, "--workers", "2")
    finally:
        server.stop()
    assert res.returncode == 0, res.stderr
    assert sorted(groups(out.read_text())) == [0, 1, 2]
    assert len(server.requests) == 9
    assert "slots moved between workers" in res.stderr
    assert held["max"] == 3, held  # 2 of its own + 1 moved; never past 4


def test_otel_exports_every_workers_streams(ray_address: str) -> None:
    """--otel with Ray: the driver exports the spans its workers recorded, one trace per
    stream linked to the batch span, as with the local executor."""
    from collections import Counter

    from tests.otel.receiver import OtlpReceiver

    receiver = OtlpReceiver().start()
    try:
        res = cli("run", "--clock", "virtual", "--otel", "--no-progress", "--input",
                  "examples/batch_tickets.jsonl", "examples/batch_tickets.cx",
                  "--executor", "ray", "--ray-address", ray_address, "--workers", "2",
                  env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
        spans = receiver.spans
    finally:
        receiver.stop()
    assert res.returncode == 0, res.stderr
    streams = [s for s in spans if s.attr("cxpar.span.kind") == "stream"]
    assert len(streams) == 20 and len({s.trace_id for s in streams}) == 20
    batch = next(s for s in spans if s.attr("cxpar.span.kind") == "run")
    assert all(s.links == [batch.span_id] for s in streams)
    by_trace = Counter(s.trace_id for s in spans)
    assert all(by_trace[s.trace_id] > 1 for s in streams)  # their calls are in them
