"""An executor chosen by the environment or `cxpar.toml` is a default for batch runs:
a single run (no `--input`) runs locally without a word (a config file shared with batch
runs must not break `cxpar run FILE`), while `--executor ray` typed on the command line
without `--input` is a usage error (it would do nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "examples" / "support_triage.cx")
RAY_ENV = {"CXPAR_EXECUTOR": "ray", "CXPAR_WORKERS": "3",
           "CXPAR_RAY_ADDRESS": "127.0.0.1:9"}  # nothing listens there: never contacted


def cxpar(*args: str, cwd: Path, env: dict[str, str] | None = None) -> \
        subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    return subprocess.run([sys.executable, "-m", "cxpar", *args], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", timeout=120,
                          env={**base, "PYTHONPATH": str(ROOT), **(env or {})})


def _ran_locally(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("support desk ready: desk-1\n")
    assert proc.stderr == "" and "ray" not in proc.stderr.lower()


@pytest.mark.parametrize("source", ["environment", "cxpar.toml"])
def test_a_ray_default_does_not_touch_a_single_run(tmp_path: Path, source: str) -> None:
    env = RAY_ENV if source == "environment" else {}
    program = tmp_path / "triage.cx"  # cxpar.toml is looked for next to the program
    program.write_text(Path(EXAMPLE).read_text())
    if source == "cxpar.toml":
        (tmp_path / "cxpar.toml").write_text(
            '[run]\nexecutor = "ray"\n[ray]\nworkers = 3\naddress = "127.0.0.1:9"\n')
    _ran_locally(cxpar("run", "--clock", "virtual", str(program), cwd=tmp_path, env=env))
    shown = cxpar("run", "--show-settings", str(program), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["settings"]["executor"]["value"] == "ray"


def test_typed_executor_ray_without_input_is_a_usage_error(tmp_path: Path) -> None:
    proc = cxpar("run", "--clock", "virtual", EXAMPLE, "--executor", "ray", cwd=tmp_path)
    assert proc.returncode == 2
    assert "`--executor ray` runs batch runs on Ray: it needs `--input" in proc.stderr
    assert proc.stdout == ""


def test_typed_executor_local_overrides_a_ray_default_for_a_batch(tmp_path: Path) -> None:
    records = tmp_path / "in.jsonl"
    records.write_text('{"id": "T-1", "text": "hi"}\n')
    proc = cxpar("run", "--clock", "virtual", str(ROOT / "examples" / "batch_tickets.cx"),
                 "--input", str(records), "--executor", "local", cwd=tmp_path, env=RAY_ENV)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('{"index": 0')
