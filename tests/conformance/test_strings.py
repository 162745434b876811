"""Rule 31 (amended) through the real CLI: CX v1.0 escapes, unknown escapes as the
character with a warning, a lone surrogate as a syntax error (never an internal error)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import cxpar


def test_clear_screen_sequence_prints(run_file: Any) -> None:
    r = run_file(r'print("\x1b[2J\x1b[H"); print("a\qb"); print("\b\f\v\a\0\x41\'");')
    assert r.code == 0
    assert r.out == "\x1b[2J\x1b[H\naqb\n\b\f\v\a\0A'\n"
    assert "warning[CX113]: unknown escape `\\q` means `q`" in r.err


def test_surrogate_pair_is_one_character(run_file: Any) -> None:
    r = run_file(r'var s = "\ud83c\udfaf"; print(s, len(s));')
    assert (r.code, r.out) == (0, "🎯 1\n")


def test_lone_surrogate_is_a_syntax_error_everywhere(tmp_path: Path) -> None:
    path = tmp_path / "s.cx"
    path.write_text('print("\\ud800");\n', encoding="utf-8")
    for args in (["run", path], ["check", path], ["graph", path],
                 ["compile", path], ["compile", "--emit", "ast", "--format", "json", path]):
        r = cxpar(*args)
        assert r.code == 1, (args, r.err)
        assert "error[CX105]: lone surrogate `\\ud800` in string" in r.err
        assert "s.cx:1:8" in r.err
    r = cxpar("check", "--format", "json", path)
    assert [json.loads(line)["code"] for line in r.lines] == ["CX105"]
