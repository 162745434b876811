"""The journal keys calls by their chosen model, schema, tools and tool rounds, and
replays tool-calling calls round by round (issue 20)."""

from __future__ import annotations

from pathlib import Path

from .conftest import run_journaled

PROGRAM = """
    on weather.lookup (a) { return { q: a.query, celsius: 20 }; }
    var r = think { prompt: "Oslo?", model: "MODEL", tools: [ weather.lookup ],
                    schema: { type: "object", properties: { summary: { type: "string" },
                              celsius: { type: "integer" } }, required: ["summary"] } };
    print(r.result, len(r._tools));
"""


def test_tool_rounds_and_structured_answers_replay(tmp_path: Path) -> None:
    j = tmp_path / "j.sqlite"
    first = run_journaled(PROGRAM.replace("MODEL", "m1"), journal=j)
    assert first.code == 0, first.err
    assert first.recorded == 2  # round 1 (tool calls) and round 2 (the answer)
    again = run_journaled(PROGRAM.replace("MODEL", "m1"), replay=j)
    assert again.out == first.out and again.served == 2 and again.not_recorded == 0


def test_the_chosen_model_is_part_of_the_key(tmp_path: Path) -> None:
    j = tmp_path / "j.sqlite"
    run_journaled(PROGRAM.replace("MODEL", "m1"), journal=j)
    other = run_journaled(PROGRAM.replace("MODEL", "m2"), replay=j)
    assert other.not_recorded == 1 and other.served == 0
    assert "not_recorded" in other.out or other.out.startswith("null")
