"""Every example (= every golden test) under both backends: identical traces, and the
llvm backend's stdout and exit code match the golden snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import EXAMPLES, analyse_file, assert_same, run_traced, single_run_golden


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 11


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_same_under_both_backends(path: Path) -> None:
    fe = analyse_file(path)
    py = run_traced(fe, "python")
    native = run_traced(fe, "llvm")
    assert_same(py, native)
    want = single_run_golden(path)
    if want is not None:
        assert (native.out, native.code) == want


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_same_with_seed_and_failures(path: Path) -> None:
    """Failure injection exercises `_errors` (retries, partial failure) on both."""
    fe = analyse_file(path)
    kw = {"seed": 7, "fail_rate": 0.3}
    assert_same(run_traced(fe, "python", **kw), run_traced(fe, "llvm", **kw))
