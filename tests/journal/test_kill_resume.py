"""Done-when of issue 18: SIGKILL a journaled batch against a real OpenAI-compatible
server on 127.0.0.1 at random moments, resume, and pay for no completed call twice.

The server (``tests/providers/fake_openai.py``, started by the test) answers every
request deterministically from its content after a short delay and counts requests.
Each record runs a multi-step stream (two sequential stages, a parallel branch, a
yes/no question) and writes a group of two result lines.
"""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.providers.fake_openai import Act, FakeServer

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """\
/// A multi-step stream per record: summarise (with a parallel tone check), classify,
/// decide; two result lines per record.
on input.record (event) {
    var a = think { prompt: "summarise: " + event.text, tone: tone.check, timeout: 20000 };
    var b = infer { prompt: "classify: " + a.result, timeout: 20000 };
    var u = is { prompt: "is this urgent? " + event.text, timeout: 20000 };
    emit output.record { id: event.id, summary: a.result, tone: a.tone, label: b.result };
    emit output.record { id: event.id, urgent: u.result, failed: keys(a._errors || {}) };
}

on tone.check (event) {
    var t = infer { prompt: "tone of: " + event.prompt, timeout: 20000 };
    return t.result;
}
"""
RECORDS = 24
CALLS_PER_RECORD = 4
MAX_CONCURRENCY = 6


def answer(req: Any) -> Act:
    """A deterministic reply (content and delay derived from the request)."""
    text = req["messages"][-1]["content"]
    h = hashlib.sha256(text.encode()).hexdigest()
    delay = 0.02 + int(h[:2], 16) / 255 * 0.06
    if text.rstrip().endswith("Answer yes or no."):
        return Act(content="yes" if int(h[2], 16) % 2 else "no", delay=delay)
    return Act(content=f"answer-{h[:10]}", delay=delay)


class Server:
    """The fake server plus a trigger: set ``kill_after`` to get ``reached`` set when
    this many requests have arrived since :meth:`mark`."""

    def __init__(self) -> None:
        self.srv = FakeServer()
        self.srv.script = self._script
        self.base = 0
        self.kill_after: int | None = None
        self.reached = threading.Event()

    def _script(self, req: Any) -> Act:
        with self.srv.lock:
            n = len(self.srv.requests) - self.base
        if self.kill_after is not None and n >= self.kill_after:
            self.reached.set()
        return answer(req)

    @property
    def count(self) -> int:
        with self.srv.lock:
            return len(self.srv.requests)

    def mark(self, kill_after: int | None) -> None:
        self.base = self.count
        self.kill_after = kill_after
        self.reached.clear()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    s.srv.start()
    try:
        yield s
    finally:
        s.srv.stop()


def cxpar(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "cxpar", "run", *args]


def env() -> dict[str, str]:
    import os

    e = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    e["PYTHONPATH"] = str(ROOT)
    return e


def batch_args(tmp: Path, server: Server, out: str, *extra: str) -> list[str]:
    return ["prog.cx", "--provider", "openai", "--base-url", server.srv.base_url,
            "--model", "m", "--input", "in.jsonl", "--output", out, "--ordered",
            "--streams", "4", "--max-concurrency", str(MAX_CONCURRENCY), "--no-progress",
            *extra]


def run_to_end(tmp: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", "run", *args], cwd=tmp, env=env(),
                          capture_output=True, text=True, timeout=180)


def journal_calls(path: Path) -> int:
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
    except sqlite3.OperationalError:  # killed before the schema was committed
        return 0
    finally:
        conn.close()


def groups(text: str) -> Counter[int]:
    return Counter(json.loads(line)["index"] for line in text.splitlines())


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_resume_pays_for_no_completed_call_twice(tmp_path: Path, server: Server,
                                                        seed: int) -> None:
    rng = random.Random(seed)
    (tmp_path / "prog.cx").write_text(PROGRAM, encoding="utf-8")
    (tmp_path / "in.jsonl").write_text("".join(
        json.dumps({"id": f"R-{i}", "text": f"ticket {i}: " + "help " * (i % 5)}) + "\n"
        for i in range(RECORDS)), encoding="utf-8")

    # the uninterrupted run: the reference output and the calls of one run
    server.mark(None)
    ref = run_to_end(tmp_path, batch_args(tmp_path, server, "ref.jsonl"))
    assert ref.returncode == 0, ref.stderr
    calls_one_run = server.count - server.base
    assert calls_one_run == RECORDS * CALLS_PER_RECORD
    reference = (tmp_path / "ref.jsonl").read_text(encoding="utf-8")
    assert groups(reference) == Counter({i: 2 for i in range(RECORDS)})

    # kill at random moments, resuming with the journal each time
    journal = tmp_path / "j.db"
    total = 0
    lost: list[int] = []
    for _kill in range(3):
        before = journal_calls(journal)
        server.mark(rng.randint(1, calls_one_run // 2))
        proc = subprocess.Popen(
            [sys.executable, "-m", "cxpar", "run",
             *batch_args(tmp_path, server, "out.jsonl", "--journal", "j.db", "--resume")],
            cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
        fired = server.reached.wait(timeout=120)
        if fired:
            time.sleep(rng.uniform(0, 0.05))
            proc.send_signal(signal.SIGKILL)
        _out, err = proc.communicate(timeout=120)
        sent = server.count - server.base
        total += sent
        committed = journal_calls(journal) - before
        if fired:
            assert proc.returncode == -signal.SIGKILL
            # requests whose answers were lost: at most the calls in flight at the kill
            assert 0 <= sent - committed <= MAX_CONCURRENCY, (sent, committed)
            lost.append(sent - committed)
        else:
            assert proc.returncode == 0, err
            lost.append(0)
            break

    server.mark(None)
    final = run_to_end(tmp_path, batch_args(tmp_path, server, "out.jsonl", "--journal",
                                            "j.db", "--resume"))
    assert final.returncode == 0, final.stderr
    total += server.count - server.base

    out = (tmp_path / "out.jsonl").read_text(encoding="utf-8")
    assert groups(out) == Counter({i: 2 for i in range(RECORDS)})  # each group once
    assert out == reference  # identical to the uninterrupted run
    assert journal_calls(journal) == calls_one_run  # every call recorded exactly once
    assert total == calls_one_run + sum(lost)
    assert total <= calls_one_run + MAX_CONCURRENCY * len(lost)

    # strict replay with the server gone: identical output, no request
    server.srv.stop()
    dead = ["--provider", "openai", "--base-url", server.srv.base_url, "--model", "m"]
    replay = run_to_end(tmp_path, ["prog.cx", *dead, "--input", "in.jsonl", "--output",
                                   "replay.jsonl", "--ordered", "--no-progress",
                                   "--replay", "j.db"])
    assert replay.returncode == 0, replay.stderr
    assert (tmp_path / "replay.jsonl").read_text(encoding="utf-8") == reference
