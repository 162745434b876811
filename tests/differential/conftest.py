"""Differential tests (python vs llvm backend): JIT cache in a per-session directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _llvm_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    mp = pytest.MonkeyPatch()
    path = tmp_path_factory.mktemp("cxpar-cache")
    mp.setenv("CXPAR_CACHE_DIR", str(path))
    yield path
    mp.undo()
