"""Every floating-point command-line option refuses `nan` and `inf` as a usage error
(exit 2) — never an internal error where the value is used (`--grace nan` once was)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from cxpar.cli import cli
from cxpar.commands.common import FiniteFloat

ROOT = Path(__file__).resolve().parents[2]


def float_options() -> list[tuple[str, click.Option]]:
    ctx = click.Context(cli)
    found = []
    for name in cli.list_commands(ctx):  # type: ignore[attr-defined]
        command = cli.get_command(ctx, name)  # type: ignore[attr-defined]
        for param in getattr(command, "params", []):
            if isinstance(param, click.Option) and isinstance(param.type, click.types.FloatParamType):
                found.append((name, param))
    return found


def test_every_float_option_is_finite() -> None:
    plain = [f"{name} {p.opts[0]}" for name, p in float_options()
             if not isinstance(p.type, FiniteFloat)]
    assert plain == [], f"use cxpar.commands.common.FiniteFloat for {plain}"


CASES = [(name, p.opts[0], bad) for name, p in float_options() for bad in ("nan", "inf")]


@pytest.mark.parametrize(("command", "option", "bad"), CASES,
                         ids=[f"{c}{o}={b}" for c, o, b in CASES])
def test_a_non_finite_float_is_a_usage_error(command: str, option: str, bad: str,
                                              tmp_path: Path) -> None:
    (tmp_path / "p.cx").write_text("print(1);\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "cxpar", command, option, bad, "p.cx"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "must be a finite number" in r.stderr and "internal error" not in r.stderr


TABLE_KEYS = [("--breaker", k) for k in ("threshold", "cooldown_ms", "failure_rate",
                                          "half_open_probes", "min_requests", "window")] + \
             [("--limits", k) for k in ("aging_ms", "initial", "min", "max", "retry_budget")]


@pytest.mark.parametrize(("option", "key"), TABLE_KEYS, ids=[f"{o}{k}" for o, k in TABLE_KEYS])
def test_a_non_finite_number_in_a_settings_table_is_a_usage_error(
        option: str, key: str, tmp_path: Path) -> None:
    """`--breaker threshold=inf` / `[limits] max = inf` were OverflowErrors (exit 70)."""
    (tmp_path / ".git").mkdir()
    (tmp_path / "p.cx").write_text("print(1);\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    section = option.removeprefix("--")
    for bad in ("inf", "nan"):
        r = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual",
                            option, f"{key}={bad}", "p.cx"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and f"`{key}`" in r.stderr, r.stderr
        assert "internal error" not in r.stderr
    (tmp_path / "cxpar.toml").write_text(f"[{section}]\n{key} = inf\n", encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "cxpar", "run", "--clock", "virtual", "p.cx"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "cxpar.toml" in r.stderr and f"`{key}`" in r.stderr, r.stderr
