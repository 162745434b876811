"""Options shared by the whole test suite."""

from __future__ import annotations

import os
import signal

import pytest

# The suite starts hundreds of `cxpar` subprocesses. Where the environment turns bytecode
# caching off (PYTHONDONTWRITEBYTECODE), each of them would recompile every cxpar module
# (about a second of CPU); let them write and reuse __pycache__ (git-ignored).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# A shell without job control starts background commands (`pytest &`, `nohup pytest`) with
# SIGINT ignored, and an ignored signal stays ignored in every child: the Ctrl-C tests'
# `cxpar` processes would never see their SIGINT. Restore the default so the suite behaves
# the same however it is launched.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-snapshots", action="store_true", default=False,
                     help="Rewrite snapshot files (tests/diagnostics/cases/*.txt, *.jsonl) "
                          "instead of comparing against them.")
