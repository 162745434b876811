"""cxpar: a compiler and runtime for CX, with parallel handler parameters."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "service"]


def __getattr__(name: str) -> Any:
    # Lazy: `import cxpar` stays cheap; `cxpar.service` loads the runtime on first use.
    if name == "service":
        from cxpar.runtime.scheduler import service
        return service
    raise AttributeError(f"module 'cxpar' has no attribute {name!r}")
