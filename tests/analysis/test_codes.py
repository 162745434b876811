"""Every CX2xx/CX3xx/CX4xx code is documented and its example triggers it."""

from __future__ import annotations

import pytest

from cxpar.diagnostics.codes import CODES, explain
from cxpar.driver import front_end_source
from cxpar.span import SourceFile

ANALYSIS_CODES = sorted(c for c in CODES if c[2] in "234")


@pytest.mark.parametrize("code", ANALYSIS_CODES)
def test_example_triggers_its_code(code: str) -> None:
    entry = CODES[code]
    assert entry.example and entry.explanation
    fe = front_end_source(SourceFile("ex.cx", entry.example + "\n"))
    assert code in [d.code for d in fe.diagnostics], fe.diagnostics
    assert explain(code)


def test_messages_follow_the_style() -> None:
    for code in ANALYSIS_CODES:
        fe = front_end_source(SourceFile("ex.cx", CODES[code].example + "\n"))
        for d in fe.diagnostics:
            assert d.message == d.message.strip() and not d.message.endswith(".")
            assert d.message[0].islower() or d.message[0] == "`", d.message
            assert d.label, d


SYNTAX_CODES = sorted(c for c in CODES if c[2] == "1" and CODES[c].example)


@pytest.mark.parametrize("code", SYNTAX_CODES)
def test_syntax_example_triggers_its_code(code: str) -> None:
    fe = front_end_source(SourceFile("ex.cx", CODES[code].example + "\n"))
    assert code in [d.code for d in fe.diagnostics], fe.diagnostics


def test_docs_diagnostics_md_is_generated_from_the_table() -> None:
    from pathlib import Path

    from cxpar.diagnostics.codes import markdown

    doc = Path(__file__).parents[2] / "docs" / "diagnostics.md"
    assert doc.read_text(encoding="utf-8") == markdown(), \
        "run `python -m cxpar.diagnostics.codes > docs/diagnostics.md`"
