"""Options shared by the whole test suite."""

from __future__ import annotations

import os

import pytest

# The suite starts hundreds of `cxpar` subprocesses. Where the environment turns bytecode
# caching off (PYTHONDONTWRITEBYTECODE), each of them would recompile every cxpar module
# (about a second of CPU); let them write and reuse __pycache__ (git-ignored).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-snapshots", action="store_true", default=False,
                     help="Rewrite snapshot files (tests/diagnostics/cases/*.txt, *.jsonl) "
                          "instead of comparing against them.")
