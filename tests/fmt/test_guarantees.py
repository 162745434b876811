"""AST identity, idempotence and comment survival on every example and every CX program
of the test suite (other people's programs, given by ``CXPAR_CORPUS``, get the same
checks in ``tests/syntax/test_external_corpus.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxpar.span import SourceFile
from cxpar.syntax.source import decode
from tests.fmt.helpers import check_guarantees

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))
OURS = sorted((ROOT / "tests").glob("**/*.cx"))


def _text(path: Path) -> str | None:
    src = decode(path.read_bytes(), path.name)
    return src.text if isinstance(src, SourceFile) else None


def _parses(text: str) -> bool:
    from cxpar.syntax.parser import parse_text

    return parse_text(text, "t.cx").ok


def test_examples_and_programs_exist() -> None:
    assert len(EXAMPLES) >= 10 and len(OURS) >= 40


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example(path: Path) -> None:
    text = _text(path)
    assert text is not None
    check_guarantees(text)


@pytest.mark.parametrize("path", OURS, ids=lambda p: str(p.relative_to(ROOT / "tests")))
def test_every_program_in_the_tests(path: Path) -> None:
    text = _text(path)
    if text is None or not _parses(text):
        return  # a syntax-error case: covered by test_syntax_errors_left_untouched
    check_guarantees(text)
