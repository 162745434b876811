"""Entry points for the commands: ``--emit llvm-ir`` and ``run --backend llvm``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .ir import generate_ir
from .jit import BackendUnavailable

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

    from .bridge import NativeRouter

__all__ = ["BackendUnavailable", "emit_ir", "prepare", "with_router", "UNAVAILABLE_HELP"]

UNAVAILABLE_HELP = ("run it with `--backend python` (the default) instead: it runs the "
                    "same program with the same behaviour; only event dispatch is slower")


def emit_ir(comp: Compilation | None) -> str:
    """The dispatch layer's IR text (needs no llvmlite)."""
    if comp is None:
        raise ValueError("the program was not analysed")
    return generate_ir(comp.info, comp.source.name) + "\n"


def prepare(comp: Compilation) -> NativeRouter:
    """JIT the dispatch layer; :class:`BackendUnavailable` when llvmlite cannot load."""
    from .jit import load_llvmlite

    load_llvmlite()
    from .bridge import build_router

    try:
        return build_router(comp)
    except BackendUnavailable:
        raise
    except (OSError, RuntimeError, AttributeError) as exc:
        raise BackendUnavailable(f"JIT compilation failed: {exc}") from exc


def with_router(program: Callable[[Any], Any], router: NativeRouter) -> Callable[[Any], Any]:
    """Wrap a compiled ``__cx_program__`` so its runtime routes through ``router``."""

    def factory(rt: Any) -> Any:
        rt.use_router(router())
        return program(rt)

    return factory
