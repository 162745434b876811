"""``cxpar run`` helpers for batch runs (``--input``) and the live ``--dashboard``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxpar.driver import UsageError

__all__ = ["check_input"]


def check_input(settings: Any) -> None:
    """Usage errors for a batch run's files (before anything is compiled)."""
    if settings.input is not None and not Path(settings.input).is_file():
        raise UsageError(f"no such input file: `{settings.input}`")
    if settings.input is not None and settings.output is not None:
        from cxpar.runtime.batchfile import BatchFileError, check_not_input

        try:
            check_not_input(settings.input, settings.output)
        except BatchFileError as exc:
            raise UsageError(str(exc)) from None
