"""Options shared by the whole test suite."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-snapshots", action="store_true", default=False,
                     help="Rewrite snapshot files (tests/diagnostics/cases/*.txt, *.jsonl) "
                          "instead of comparing against them.")
