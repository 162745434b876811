"""cxpar: a compiler and runtime for CX, with parallel handler parameters."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["CompileError", "JournalError", "Program", "ProviderSettings", "RunResult",
           "RunSettings", "Runtime", "SettingsError", "__version__", "load", "service"]

#: The Python API (docs/api.md), imported on first use so `import cxpar` stays cheap.
_API = {"CompileError", "JournalError", "Program", "ProviderSettings", "RunResult",
        "RunSettings", "Runtime", "SettingsError", "load"}


def __getattr__(name: str) -> Any:
    # Lazy: `import cxpar` stays cheap; `cxpar.service` loads the runtime on first use.
    if name == "service":
        from cxpar.runtime.scheduler import service
        return service
    if name in _API:
        from cxpar import api

        return getattr(api, name)
    raise AttributeError(f"module 'cxpar' has no attribute {name!r}")
