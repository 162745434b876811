"""Shell completion (docs/cli.md "Shell completion") through the real `cxpar` script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def complete(words: str, shell: str = "bash") -> list[str]:
    env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1
                                                              + words.endswith(" ")),
               _CXPAR_COMPLETE=f"{shell}_complete", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "cxpar"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line]


def test_sourcing_scripts_exist() -> None:
    for shell, needle in (("bash", "complete -o nosort -F _cxpar_completion"),
                          ("zsh", "compdef _cxpar_completion cxpar"),
                          ("fish", "complete --no-files --command cxpar")):
        proc = subprocess.run([sys.executable, "-m", "cxpar"], capture_output=True,
                              text=True, timeout=60, cwd=ROOT,
                              env=dict(os.environ, _CXPAR_COMPLETE=f"{shell}_source",
                                       PYTHONPATH=str(ROOT)))
        assert needle in proc.stdout.replace("__main__.py", "cxpar"), (shell, proc.stdout)


def test_commands_options_and_choices_complete() -> None:
    assert "run" in complete("cxpar ru")
    assert {"--clock", "--config"} <= set(complete("cxpar run --c"))
    assert complete("cxpar run --clock ") == ["real", "virtual"]
    assert "--strict" in complete("cxpar run --st")
