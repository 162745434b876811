"""The outputs docs/language.md shows for the model features ("Models: endpoints,
structured output, tools, streaming") are what `cxpar run --clock virtual` prints: each
```cx block there that is followed by a ```text block must print exactly that text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "language.md"


def _pairs() -> list[tuple[int, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Models: endpoints, structured output, tools, streaming")
    end = text.index("\n## ", start + 1)
    section = text[start:end]
    line0 = text[:start].count("\n") + 1
    found = []
    for m in re.finditer(r"```cx\n(.*?)```\n\n```text\n(.*?)```", section, re.S):
        found.append((line0 + section[:m.start()].count("\n"), m.group(1), m.group(2)))
    return found


PAIRS = _pairs()


def test_the_section_shows_outputs() -> None:
    assert len(PAIRS) >= 4  # endpoints, structured output, tools, streaming


@pytest.mark.parametrize(("line", "program", "shown"), PAIRS,
                         ids=[f"language.md:{p[0]}" for p in PAIRS])
def test_shown_output_is_the_real_output(line: int, program: str, shown: str,
                                         tmp_path: Path) -> None:
    src = tmp_path / "snippet.cx"
    src.write_text(program, encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual", str(src)],
                       capture_output=True, text=True, encoding="utf-8", cwd=tmp_path,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout == shown


def test_unknown_endpoint_error_is_shown_as_printed(tmp_path: Path) -> None:
    """The section's example with a fourth line naming the endpoint `smi`: stderr is
    exactly the error block the doc shows, and the exit code is 3."""
    text = DOC.read_text(encoding="utf-8")
    program = PAIRS[0][1] + 'var c = think { prompt: "hello", endpoint: "smi" };\n'
    shown = re.search(r"```text\n(error\[CX500\]: unknown endpoint `smi`.*?)```", text,
                      re.S)
    assert shown is not None
    src = tmp_path / "s4.cx"
    src.write_text(program, encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual", "s4.cx"],
                       capture_output=True, text=True, encoding="utf-8", cwd=tmp_path,
                       timeout=60, env={**os.environ, "NO_COLOR": "1"})
    assert p.returncode == 3
    assert p.stderr == shown.group(1)
