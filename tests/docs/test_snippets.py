"""Every fenced ``cx`` block in README.md and docs/ is run through the real CLI, so the
docs cannot go stale (issue 16).

- A block must pass ``cxpar check`` (warnings are fine) and then run with
  ``cxpar run --clock virtual`` and exit 0.
- A block under a ``## CXnnn`` heading of docs/diagnostics.md is an example of that
  diagnostic: checking it (or, for runtime errors, running it) must report ``CXnnn``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from cxpar.cli import main

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    file: Path
    line: int
    text: str
    code: str | None  # the diagnostic the block illustrates (docs/diagnostics.md)

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for path in DOCS:
        code = None
        lines = path.read_text(encoding="utf-8").split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"## (CX\d{3}):", lines[i])
            if m and path.name == "diagnostics.md":
                code = m.group(1)
            if lines[i].strip() == "```cx":
                start = i + 1
                j = start
                while j < len(lines) and lines[j].strip() != "```":
                    j += 1
                found.append(Block(path, start, "\n".join(lines[start:j]) + "\n",
                                   code if path.name == "diagnostics.md" else None))
                i = j
            i += 1
    return found


BLOCKS = blocks()


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_there_are_snippets() -> None:
    files = {b.file.name for b in BLOCKS}
    assert {"README.md", "language.md", "diagnostics.md"} <= files


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_snippet(block: Block, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".git").mkdir()  # no cxpar.toml from above applies
    prog = tmp_path / "snippet.cx"
    prog.write_text(block.text, encoding="utf-8")
    code, _out, err = cli(["check", str(prog)], capsys)
    if block.code is not None:
        if block.code not in err:
            code, _out, err = cli(["run", "--clock", "virtual", "--timeout", "60000",
                                   str(prog)], capsys)
        assert block.code in err, f"{block.id} should show {block.code}:\n{err}"
        return
    assert code == 0, f"{block.id} does not check:\n{err}"
    code, _out, err = cli(["run", "--clock", "virtual", "--timeout", "60000", str(prog)],
                          capsys)
    assert code == 0, f"{block.id} does not run:\n{err}"
