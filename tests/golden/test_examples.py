"""Golden tests: every ``examples/*.cx`` against its golden ``examples/NAME.out``.

The goldens are the ones ``cxpar test examples/`` uses (``NAME.out``, ``NAME.code``,
``NAME.jsonl`` …, see :mod:`cxpar.golden`), run through the same machinery: a fresh
``cxpar run --clock virtual`` per example. ``pytest tests/golden --update-snapshots``
(or ``cxpar test --update examples/``) rewrites them; review every changed file against
SPEC before committing it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cxpar import golden

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=120)


def case_of(path: Path) -> golden.Case:
    return golden.Case(path, path.relative_to(ROOT).as_posix())


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 11


def test_every_example_has_a_golden() -> None:
    missing = [p.name for p in EXAMPLES if not p.with_suffix(".out").exists()]
    assert not missing, f"examples without a golden NAME.out: {missing}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example(path: Path, request: pytest.FixtureRequest) -> None:
    out = golden.run_case(case_of(path))
    assert out.problem is None, out.problem
    assert "Traceback" not in out.stderr
    assert "internal error" not in out.stderr
    # exit 3 must come with a report on stderr; exit 0 with no runtime error report
    if out.code == 3:
        assert "error" in out.stderr
    else:
        assert "\nerror" not in "\n" + out.stderr
    if request.config.getoption("--update-snapshots"):
        golden.update(out)
        return
    problems = golden.compare(out)
    assert not problems, "\n".join(problems)


def test_cxpar_test_examples_passes() -> None:
    """What CI promises: ``cxpar test examples/`` passes, one line per example."""
    proc = run_cli("test", "examples/")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{len(EXAMPLES)} passed, 0 failed"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_documented(path: Path) -> None:
    first = path.read_text(encoding="utf-8").lstrip().splitlines()[0]
    assert first.startswith("///"), f"{path.name} must start with a `///` header comment"


def compiled_source(path: Path) -> str:
    """What ``cxpar compile FILE -o out.py`` writes (generated in-process: faster)."""
    from cxpar.codegen.module import python_source
    from cxpar.driver import front_end

    fe = front_end(path, path.relative_to(ROOT).as_posix())
    assert not fe.has_errors and fe.compilation is not None
    return python_source(fe.compilation)


def test_cli_compile_writes_the_same_module(tmp_path: Path) -> None:
    path = ROOT / "examples" / "support_triage.cx"
    out_py = tmp_path / "out.py"
    proc = run_cli("compile", "examples/support_triage.cx", "-o", str(out_py))
    assert proc.returncode == 0, proc.stderr
    assert out_py.read_text(encoding="utf-8") == compiled_source(path)


SINGLE_RUNS = [p for p in EXAMPLES
               if not any(p.with_suffix(ext).exists() for ext in (".jsonl", ".args", ".journal"))]


@pytest.mark.parametrize("path", SINGLE_RUNS, ids=[p.stem for p in SINGLE_RUNS])
def test_compiled_module_prints_the_same(path: Path, tmp_path: Path) -> None:
    """``python out.py --clock virtual`` prints what ``cxpar run --clock virtual`` does."""
    case = case_of(path)
    out_py = tmp_path / "out.py"
    out_py.write_text(compiled_source(path), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(out_py), "--clock", "virtual"], cwd=tmp_path,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == case.golden.read_text(encoding="utf-8")
    assert proc.returncode == case.expected_code()


def test_retries_example_under_cli_fault_injection() -> None:
    """`--fail-rate` only changes data (`_errors`), never crashes; deterministic per seed."""
    args = ("run", "--clock", "virtual", "--fail-rate", "0.5", "--seed", "3",
            "examples/retries.cx")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert first.stdout == second.stdout
    assert "flaky:" in first.stdout
