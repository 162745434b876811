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


def test_max_concurrency_holds_across_all_workers(tmp_path: Path, ray_address: str) -> None:
    """A real HTTP endpoint on 127.0.0.1 counts the calls it holds at once: with
    ``--max-concurrency 3`` on 2 workers it never sees more than 3."""
    from tests.providers.fake_openai import FakeServer

    lock = threading.Lock()
    held = {"now": 0, "max": 0}

    def script(data: dict) -> str:
        with lock:
            held["now"] += 1
            held["max"] = max(held["max"], held["now"])
        time.sleep(0.05)
        with lock:
            held["now"] -= 1
        return "ok"

    server = FakeServer().start()
    server.script = script
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
