"""A real local Ray cluster for the ``--executor ray`` tests (one per test module).

``ray start --head --block`` runs in its own process group with 2 CPUs; the tests join
it with ``--ray-address`` (what a user does with an existing cluster) and the fixture
stops it by that process's id at the end of the module. Without Ray installed the tests
skip and say how to install it (CI installs the ``test`` extra, which has Ray).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench.ray_executor starts the head for benches and tests
    sys.path.insert(0, str(ROOT))


def _ray_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """Start a 2-CPU Ray head on a free port; yield its address; stop it."""
    if not _ray_installed():
        pytest.skip("Ray is not installed: pip install -e '.[test]' (or 'cxpar[ray]')")
    from bench.ray_executor import local_head

    with local_head(2) as address:
        yield address


def cli(*args: str, timeout: float = 240, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """``cxpar ARGS`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8",
                          timeout=timeout, env={**os.environ, **(env or {})})


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def groups(text: str) -> dict[int, list[str]]:
    """Result lines by index; fails if an index's lines are not one contiguous group."""
    out: dict[int, list[str]] = {}
    last = None
    for line in text.splitlines():
        if not line.strip():
            continue
        i = json.loads(line)["index"]
        if i != last:
            assert i not in out, f"index {i} written twice"
            last = i
        out.setdefault(i, []).append(line)
    return out
