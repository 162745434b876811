"""The analysis pipeline: an ordered list of named passes over one Compilation.

Passes add diagnostics and carry on; codegen runs only if there are no errors.
A crash inside a pass becomes an internal error naming the pass, and
``CXPAR_DUMP_AFTER=<pass>`` prints the state after that pass (numba's PassManager).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cxpar.analysis.model import ProgramInfo
from cxpar.ast.nodes import Node, Program
from cxpar.ast.visit import walk
from cxpar.diagnostics.model import Diagnostic
from cxpar.span import SourceFile


@dataclass
class Compilation:
    """Everything known about one program as it flows through analysis."""

    source: SourceFile
    program: Program
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Extra service names (plug-ins) known to the checker: name -> stem.
    extra_services: dict[str, str] = field(default_factory=dict)
    #: Results of passes, by pass name (resolution tables, analysed calls, graph...).
    results: dict[str, Any] = field(default_factory=dict)
    #: The analysed program (filled by the passes; see :mod:`cxpar.analysis.model`).
    info: ProgramInfo = field(default_factory=ProgramInfo)
    #: The stream execution graph (:class:`cxpar.analysis.graph.Graph`), set by `graph`.
    graph: Any = None
    #: Per-service latency estimates in ms for the graph (defaults: lang.DEFAULT_LATENCY_MS).
    latency: dict[str, float] = field(default_factory=dict)
    _nodes: list[Node] | None = field(default=None, init=False, repr=False)

    @property
    def nodes(self) -> list[Node]:
        """Every node of the program in pre-order (one walk, shared by the passes and the
        language server; analysis does not change the tree)."""
        if self._nodes is None:
            self._nodes = walk(self.program)
        return self._nodes

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


class PassCrash(Exception):
    """An internal error inside an analysis pass."""

    def __init__(self, name: str, cause: BaseException) -> None:
        super().__init__(f"internal error in analysis pass `{name}`: {cause!r}")
        self.pass_name = name
        self.cause = cause


Pass = Callable[[Compilation], None]

#: The passes, in order. Each is ``(name, function)`` (filled at the end of this module).
PASSES: list[tuple[str, Pass]] = []


def analyse(comp: Compilation, passes: list[tuple[str, Pass]] | None = None) -> Compilation:
    """Run every pass over ``comp`` in order."""
    dump_after = os.environ.get("CXPAR_DUMP_AFTER")
    for name, run in passes if passes is not None else PASSES:
        try:
            run(comp)
        except RecursionError as exc:
            raise PassCrash(name, exc) from exc
        except Exception as exc:  # noqa: BLE001 - labelled and re-raised
            raise PassCrash(name, exc) from exc
        if dump_after == name:
            print(f"--- state after pass `{name}` ---", file=sys.stderr)
            for key, value in comp.results.items():
                print(f"{key}: {value!r}"[:2000], file=sys.stderr)
    return comp


# The passes import Compilation from this module, so they are registered last.
from cxpar.analysis import cycles, events, graph, resolve, services  # noqa: E402

PASSES.extend([("resolve", resolve.run), ("services", services.run), ("events", events.run),
               ("cycles", cycles.run), ("graph", graph.run)])
