"""Without pygls/lsprotocol, `cxpar lsp` says what to install and exits 2."""

from __future__ import annotations

import subprocess
import sys


def test_lsp_without_pygls_exits_2_with_the_pip_command() -> None:
    code = ("import sys; sys.modules['pygls'] = None; from cxpar.cli import main; "
            "main(['lsp'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "pip install 'cxpar[lsp]'" in proc.stderr
    assert "Traceback" not in proc.stderr
