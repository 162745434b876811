"""Golden tests: every ``examples/*.cx`` through the real CLI (stdout and exit code).

``pytest tests/golden --update-snapshots`` rewrites ``expected/<name>.out`` / ``.code``;
review every changed file against SPEC before committing it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.cx"))
EXPECTED = Path(__file__).parent / "expected"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)


def check_snapshot(request: pytest.FixtureRequest, name: str, stdout: str, code: int) -> None:
    out_file, code_file = EXPECTED / f"{name}.out", EXPECTED / f"{name}.code"
    if request.config.getoption("--update-snapshots"):
        EXPECTED.mkdir(exist_ok=True)
        out_file.write_text(stdout, encoding="utf-8")
        code_file.write_text(f"{code}\n", encoding="utf-8")
        return
    assert out_file.exists(), f"no snapshot for {name}; run with --update-snapshots"
    assert stdout == out_file.read_text(encoding="utf-8")
    assert code == int(code_file.read_text(encoding="utf-8"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 11


def test_every_snapshot_has_an_example() -> None:
    names = {p.stem for p in EXAMPLES}
    stale = sorted({p.stem for p in EXPECTED.glob("*.out")} - names)
    assert not stale, f"snapshots without an example: {stale}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example(path: Path, request: pytest.FixtureRequest) -> None:
    rel = path.relative_to(ROOT).as_posix()
    proc = run_cli("run", "--clock", "virtual", rel)
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    # exit 3 must come with a report on stderr; exit 0 with no runtime error report
    if proc.returncode == 3:
        assert "error" in proc.stderr
    else:
        assert "\nerror" not in "\n" + proc.stderr
    check_snapshot(request, path.stem, proc.stdout, proc.returncode)


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


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_compiled_module_prints_the_same(path: Path, tmp_path: Path) -> None:
    """``python out.py --clock virtual`` prints what ``cxpar run --clock virtual`` does."""
    expected_out = EXPECTED / f"{path.stem}.out"
    if not expected_out.exists():
        pytest.skip("no snapshot yet")
    out_py = tmp_path / "out.py"
    out_py.write_text(compiled_source(path), encoding="utf-8")
    proc = subprocess.run([sys.executable, str(out_py), "--clock", "virtual"], cwd=tmp_path,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == expected_out.read_text(encoding="utf-8")
    assert proc.returncode == int((EXPECTED / f"{path.stem}.code").read_text(encoding="utf-8"))


def test_retries_example_under_cli_fault_injection() -> None:
    """`--fail-rate` only changes data (`_errors`), never crashes; deterministic per seed."""
    args = ("run", "--clock", "virtual", "--fail-rate", "0.5", "--seed", "3",
            "examples/retries.cx")
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert first.stdout == second.stdout
    assert "flaky:" in first.stdout
