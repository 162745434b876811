"""Back-end emitters for ``cxpar compile --emit``; each later stage registers here."""

from __future__ import annotations

from cxpar.driver import FrontEnd, UsageError


def emit(kind: str, fe: FrontEnd, fmt: str) -> str:
    """Produce ``kind`` (graph, python, llvm-ir) for an analysed program."""
    if kind == "graph":
        from cxpar.commands.graph import render_graph

        return render_graph(fe, fmt)
    if kind == "python":
        from cxpar.codegen.module import python_source

        if fe.compilation is None:
            raise UsageError("nothing to compile: the program did not pass analysis")
        return python_source(fe.compilation)
    if kind == "llvm-ir":
        from cxpar.codegen.llvm.backend import emit_ir

        return emit_ir(fe.compilation)
    raise UsageError(f"`--emit {kind}` is not available yet in this build")
