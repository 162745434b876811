"""Back-end emitters for ``cxpar compile --emit``; each later stage registers here."""

from __future__ import annotations

from cxpar.driver import FrontEnd, UsageError


def emit(kind: str, fe: FrontEnd, fmt: str) -> str:
    """Produce ``kind`` (graph, python, llvm-ir) for an analysed program."""
    raise UsageError(f"`--emit {kind}` is not available yet in this build")
