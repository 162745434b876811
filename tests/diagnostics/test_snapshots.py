"""Diagnostics snapshots: each ``cases/*.cx`` has its rendered text (``.txt``, no colour)
and JSON lines (``.jsonl``) checked in; ``pytest --update-snapshots`` rewrites them.

The cases are parsed with ``syntax_only`` (what ``cxpar check --syntax-only`` prints),
so analysis changes never churn these front-end snapshots.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from cxpar.commands.common import print_diagnostics
from cxpar.diagnostics.render import render_json
from cxpar.driver import front_end

CASES = Path(__file__).parent / "cases"
FILES = sorted(CASES.glob("*.cx"))


def render(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    name = f"cases/{path.name}"
    fe = front_end(path, name, syntax_only=True)
    out, err = io.StringIO(), io.StringIO()
    print_diagnostics(fe, "text", out=out, err=err)
    assert out.getvalue() == ""
    jsonl = "".join(render_json(d) + "\n" for d in fe.diagnostics)
    return err.getvalue(), jsonl


def test_enough_cases() -> None:
    assert len(FILES) >= 12


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_snapshot(path: Path, request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    text, jsonl = render(path, monkeypatch)
    assert "Traceback" not in text
    assert "\x1b[" not in text
    for suffix, got in ((".txt", text), (".jsonl", jsonl)):
        snap = path.with_suffix(suffix)
        if request.config.getoption("--update-snapshots"):
            snap.write_text(got, encoding="utf-8")
            continue
        assert snap.exists(), f"no snapshot {snap.name}; run pytest --update-snapshots"
        assert got == snap.read_text(encoding="utf-8"), f"{snap.name} differs"


def test_every_case_has_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in FILES:
        text, jsonl = render(path, monkeypatch)
        assert jsonl, path.name
