"""Other people's CX programs, given by the environment variable ``CXPAR_CORPUS``.

Programs from other repositories are never committed (their code is not ours): the
project's own corpus is ``tests/syntax/programs``, CX written here in CX v1.0 style
covering every construct (``test_corpus.py``). To check a collection of real programs,
point ``CXPAR_CORPUS`` at a directory; every ``*.cx`` under it goes through what `cxpar
check`, `graph` and `compile` do, and must never cause an internal error (exit 70), and each one that parses keeps the
formatter's guarantees (AST identity, idempotence, comments kept).
With ``CXPAR_CORPUS_STRICT=1`` (a curated corpus of valid CX v1.0 programs) each file
must also check with no error. Without ``CXPAR_CORPUS`` this is the one test that skips.

Run with ``-s`` to see, per file, the first error of those that do not check cleanly.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from cxpar.ast.dump import dump_json
from cxpar.codegen.module import python_source
from cxpar.commands.graph import render_graph
from cxpar.driver import front_end_source
from cxpar.span import SourceFile
from cxpar.syntax.parser import parse_text
from cxpar.syntax.source import decode
from tests.fmt.helpers import check_guarantees

ROOT = os.environ.get("CXPAR_CORPUS")
STRICT = os.environ.get("CXPAR_CORPUS_STRICT") == "1"
FILES = sorted(Path(ROOT).glob("**/*.cx")) if ROOT else []
UNSET = ("CXPAR_CORPUS is not set: set it to a directory of CX programs from elsewhere "
         "(they are not committed) to check them; the project's own corpus always runs")


def _params() -> list:
    if not ROOT:
        return [pytest.param(None, id="unset", marks=pytest.mark.skip(reason=UNSET))]
    if not FILES:
        return [pytest.param(None, id="empty")]
    return [pytest.param(p, id=str(p.relative_to(ROOT))) for p in FILES]


@pytest.mark.parametrize("path", _params())
def test_external_program(path: Path | None, capsys: pytest.CaptureFixture[str]) -> None:
    assert path is not None, f"no .cx files under CXPAR_CORPUS={ROOT}"
    src = decode(path.read_bytes(), str(path))
    if not isinstance(src, SourceFile):
        assert not STRICT, f"{src.code} {src.message}"
        return
    fe = front_end_source(src)  # an exception here is an internal error of `cxpar check`
    for d in fe.diagnostics:
        assert d.code.startswith("CX") and d.message and 1 <= d.span.line
    errors = [d for d in fe.diagnostics if d.is_error]
    if parse_text(src.text, path.name).ok:
        check_guarantees(src.text)  # what `cxpar fmt` promises
    if fe.program is not None:
        dump_json(fe.program)
    if fe.compilation is not None and not errors:
        for fmt in ("text", "mermaid", "dot", "json"):
            render_graph(fe, fmt)
        ast.parse(python_source(fe.compilation))
    if errors:
        first = errors[0]
        line = src.text.split("\n")[first.span.line - 1].strip()[:80]
        with capsys.disabled():
            print(f"\n{path.name}:{first.span.line}:{first.span.col}: {first.code} "
                  f"{first.message} | {line}")
        assert not STRICT, f"{first.code} {first.message} at {first.span}"
