"""`[provider] headers` that would split or corrupt an HTTP request are refused when the
settings are read (exit 2, naming the file and the header), not sent on every call."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

BAD = {
    "CRLF in a value": ('{ "X-A" = "a\\r\\nInjected: 1" }', "the value of header `X-A`"),
    "LF in a value": ('{ "X-A" = "a\\nb" }', "the value of header `X-A`"),
    "NUL in a value": ('{ "X-A" = "a\\u0000b" }', "the value of header `X-A`"),
    "space in a name": ('{ "Bad Name" = "v" }', "header name 'Bad Name'"),
    "colon in a name": ('{ "X:Y" = "v" }', "header name 'X:Y'"),
    "empty name": ('{ "" = "v" }', "header name ''"),
}


@pytest.mark.parametrize(("table", "message"), list(BAD.values()), ids=list(BAD))
def test_a_header_that_would_break_the_request_is_a_usage_error(
        tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "p.cx").write_text("print(1);\n", encoding="utf-8")
    (tmp_path / "cxpar.toml").write_text(f"[provider]\nheaders = {table}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual", "p.cx"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert "`headers` in [provider] of" in r.stderr and message in r.stderr, r.stderr


def test_ordinary_headers_are_accepted(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "p.cx").write_text("print(1);\n", encoding="utf-8")
    (tmp_path / "cxpar.toml").write_text(
        '[provider]\nheaders = { "X-Title" = "cxpar: a run", "HTTP-Referer" = "x" }\n',
        encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual", "p.cx"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "1\n", r.stderr
