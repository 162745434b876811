"""``cxpar run`` helpers for batch runs (``--input``) and the live ``--dashboard``."""

from __future__ import annotations

from typing import Any

from cxpar.driver import UsageError

__all__ = ["check_executor", "check_input"]


def check_input(settings: Any) -> None:
    """Usage errors for a batch run's files (before anything is compiled)."""
    if settings.input is None:
        return
    from cxpar.runtime.batchfile import BatchFileError, check_input_file, check_not_input

    try:
        check_input_file(settings.input)
        if settings.output is not None:
            check_not_input(settings.input, settings.output)
    except BatchFileError as exc:
        raise UsageError(str(exc)) from None


def check_executor(resolved: Any) -> None:
    """Usage errors for ``--executor`` and the Ray options (exit 2).

    ``--workers`` / ``--ray-address`` typed without ``--executor ray``, or ``--executor
    ray`` typed for a run without ``--input``, would silently do nothing: refused. (From
    the environment or ``cxpar.toml`` they only apply where they can.)"""
    s = resolved.settings
    typed = {name for name, origin in resolved.origins.items() if origin.startswith("--")}
    if s.executor != "ray":
        for name, flag in (("workers", "--workers"), ("ray_address", "--ray-address")):
            if name in typed:
                raise UsageError(f"`{flag}` needs `--executor ray`")
        return
    if s.input is None:
        if "executor" in typed:
            raise UsageError("`--executor ray` runs batch runs on Ray: it needs `--input "
                             "RECORDS.jsonl`")
        return
    import importlib.util

    if importlib.util.find_spec("ray") is None:  # without importing it: that is slow
        from cxpar.runtime.executors.ray import RAY_MISSING

        raise UsageError(RAY_MISSING)

