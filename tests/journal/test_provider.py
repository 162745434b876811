"""JournaledProvider: record, serve by key, strict replay (in-process, virtual clock)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from cxpar.runtime.providers.base import CallContext, ProviderError
from cxpar.runtime.providers.sim import SimProvider

from .conftest import run_batch_journaled, run_journaled

PROGRAM = """
on a.b (event) {
    var r = infer { prompt: "same question" };
    return r.result;
}
var x = think { prompt: "hello", k1: a.b, k2: a.b };
print(x.result, x.k1, x.k2);
var y = is { prompt: "is it?" };
print(y.result, now());
"""


class Counting(SimProvider):
    """The sim, counting the calls that reach it."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        self.calls.append((service, dict(request)))
        return await super().call(service, request, context)


def rows(path: Path, sql: str = "SELECT stream, service, occurrence, attempt FROM calls "
                                "ORDER BY id") -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_record_then_replay_prints_the_same_without_the_provider(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    first = run_journaled(PROGRAM, journal=j)
    assert first.code == 0, first.err
    assert first.recorded == 4 and first.served == 0
    again = Counting(0)
    second = run_journaled(PROGRAM, journal=j, provider=again)
    assert second.out == first.out
    assert again.calls == [] and second.served == 4 and second.recorded == 0
    replay = run_journaled(PROGRAM, replay=j, provider=Counting(0))
    assert replay.out == first.out  # now() too: served answers take their recorded time
    assert replay.not_recorded == 0


def test_identical_requests_get_occurrences(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    run_journaled(PROGRAM, journal=j)
    infer = [r for r in rows(j) if r[1] == "infer"]
    assert sorted(r[2] for r in infer) == [0, 1]
    assert {r[0] for r in rows(j)} == {-1}


def test_only_missing_calls_reach_the_provider(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    first = run_journaled(PROGRAM, journal=j)
    conn = sqlite3.connect(j)
    conn.execute("DELETE FROM calls WHERE service = 'infer' AND occurrence = 1")
    conn.execute("DELETE FROM calls WHERE service = 'is'")
    conn.commit()
    conn.close()
    inner = Counting(0)
    second = run_journaled(PROGRAM, journal=j, provider=inner)
    assert second.out == first.out
    assert [c[0] for c in inner.calls] == ["infer", "is"]
    assert second.served == 2 and second.recorded == 2
    assert len(rows(j)) == 4


def test_strict_replay_fails_unrecorded_calls_as_not_recorded(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    run_journaled(PROGRAM, journal=j)
    long_prompt = "changed " + "x" * 200
    changed = PROGRAM.replace('prompt: "hello"', f'prompt: "{long_prompt}"') + \
        "print(x._errors.result.type);\nprint(x._errors.result.message);\n"
    inner = Counting(0)
    out = run_journaled(changed, replay=j, provider=inner)
    assert inner.calls == []
    lines = out.out.splitlines()
    assert lines[2] == "not_recorded"
    request = json.dumps({"prompt": long_prompt})
    assert lines[3] == (f"`think` is not recorded in journal `{j}` "
                        f"(request {request[:80]}…)")
    assert out.code == 0  # `_errors` failures leave the exit code alone (rule 6)
    assert out.served == 3 and out.not_recorded == 1


def test_a_journal_of_another_program_warns_and_still_serves(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    run_journaled(PROGRAM, journal=j)
    other = 'var z = is { prompt: "is it?" };\nprint(z.result);\n'
    out = run_journaled(other, replay=j)
    assert len(out.warnings) == 1 and "another program" in out.warnings[0]
    assert out.served == 1 and out.not_recorded == 0
    same = run_journaled(PROGRAM, replay=j)
    assert same.warnings == []


class FlakyOnce(SimProvider):
    """Fails the first attempt of every call, then answers like the sim."""

    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        if context.attempt == 1:
            raise ProviderError("flaky")
        return await super().call(service, request, context)


def test_a_retried_call_is_one_record_with_its_attempt(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    text = 'var a = think { prompt: "p", retries: 2 };\nvar b = think { prompt: "p", ' \
           'retries: 2 };\nprint(a.result == b.result, a._errors);\n'
    out = run_journaled(text, journal=j, provider=FlakyOnce(0))
    assert out.out == "true null\n"
    assert rows(j) == [(-1, "think", 0, 2), (-1, "think", 1, 2)]


class Weird(SimProvider):
    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        if service == "infer":
            return {1, 2}  # not JSON data
        return await super().call(service, request, context)


def test_answers_that_are_not_json_are_passed_on_but_not_journaled(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    text = 'var a = infer { prompt: "p" };\nvar b = think { prompt: "q" };\nprint(b.result);\n'
    out = run_journaled(text, journal=j, provider=Weird(0))
    assert out.code == 0 and out.out == "[think] q\n"
    assert "not JSON data" in out.err and out.err.count("warning:") == 1
    assert [r[1] for r in rows(j)] == ["think"]


def test_learn_is_answered_by_the_provider_not_the_journal(tmp_path: Path) -> None:
    j = tmp_path / "j.db"
    text = """
    conscious Bot { realize(self: conscious) { learn { fact: "a" }; } }
    var b = new Bot({});
    var n = learn { fact: "b" };
    var m = learn { fact: "c" };
    print(n.result, m.result);
    """
    first = run_journaled(text, journal=j)
    second = run_journaled(text, journal=j)
    replay = run_journaled(text, replay=j)
    assert first.out == second.out == replay.out == "1 2\n"
    assert rows(j) == []


def test_batch_streams_are_keyed_by_record(tmp_path: Path) -> None:
    text = """
    on input.record (event) {
        var r = think { prompt: "same for all" };
        emit output.record { i: event.i, r: r.result };
    }
    """
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(3)), encoding="utf-8")
    j = tmp_path / "j.db"
    code, first, _p = run_batch_journaled(text, inp, journal=j)
    assert code == 0
    assert sorted(rows(j, "SELECT stream, occurrence FROM calls")) == [(0, 0), (1, 0), (2, 0)]
    assert rows(j, "SELECT stream, failed FROM streams ORDER BY stream") == \
        [(0, 0), (1, 0), (2, 0)]
    inner = Counting(0)
    code, second, prov = run_batch_journaled(text, inp, journal=j, provider=inner)
    assert second == first and inner.calls == [] and prov.served == 3
