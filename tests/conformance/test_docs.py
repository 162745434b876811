"""Every ```cx block of docs/language.md checks clean and runs (exit 0, virtual clock)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).parents[2] / "docs" / "language.md"
BLOCKS = re.findall(r"```cx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_block_runs(cx: Any, block: str) -> None:
    r = cx(block)
    assert r.code == 0, r.err
    assert not [d for d in r.diagnostics if d.is_error]


def test_examples_print_what_the_comments_say(cx: Any) -> None:
    by_start = {b.split("\n", 1)[0]: b for b in BLOCKS}
    assert cx(by_start["var x = 1;"]).lines == ["1 3 10 1"]
    assert cx(next(b for b in BLOCKS if "Counter" in b)).lines == ["a 1 null", "b null null"]
    assert cx(next(b for b in BLOCKS if "work.finish" in b)).lines == ["done", "a", "b"]
    escapes = cx(next(b for b in BLOCKS if "x1b[2J" in b))
    assert escapes.lines[0] == "\x1b[2J\x1b[H" and escapes.lines[2] == "🎯 1"
