"""The front half of the pipeline shared by every command: read → parse → analyse."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cxpar.analysis.pipeline import Compilation, analyse
from cxpar.ast.nodes import Program
from cxpar.diagnostics.model import Diagnostic, warning
from cxpar.span import SourceFile, Span
from cxpar.syntax.parser import ParseResult, parse
from cxpar.syntax.source import read_source


class UsageError(Exception):
    """A command-line mistake (exit code 2)."""


@dataclass
class FrontEnd:
    """What the front end produced for one file."""

    name: str
    source: SourceFile | None
    program: Program | None = None
    compilation: Compilation | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diagnostics)


def collect_paths(paths: list[str]) -> list[tuple[Path, str]]:
    """Expand files and directories (recursing into ``*.cx``) to ``(path, shown name)``."""
    out: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*.cx") if q.is_file())
            if not found:
                raise UsageError(f"no `.cx` files under `{raw}`")
            out.extend((q, str(q)) for q in found)
        elif not p.exists():
            raise UsageError(f"no such file or directory: `{raw}`")
        else:
            out.append((p, raw))
    return out


#: Deepest AST allowed (expression chains such as `1 + 1 + ... + 1` nest one level per
#: operator); deeper programs get CX108 instead of exhausting the analysis' recursion.
MAX_AST_DEPTH = 2000


def check_depth(program: Program) -> Diagnostic | None:
    """CX108 at the first node deeper than :data:`MAX_AST_DEPTH`, else None (iterative)."""
    from cxpar.ast.nodes import Node, child_fields
    from cxpar.diagnostics.model import error

    if _depth_at_most(program, MAX_AST_DEPTH):
        return None
    stack: list[tuple[Node, int]] = [(program, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            return error("CX108", f"expression or statement nested too deeply (more than "
                         f"{MAX_AST_DEPTH} levels)", node.span,
                         label="the limit is reached here",
                         help="split long operator chains into several `var`s")
        for name in child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, Node):
                stack.append((value, depth + 1))
            elif isinstance(value, list):
                stack.extend((v, depth + 1) for v in value if isinstance(v, Node))
    return None


def _depth_at_most(program: Program, limit: int) -> bool:
    """Whether no node is deeper than ``limit`` (one level at a time: the quick answer for
    every program but the rare deep one, which :func:`check_depth` then walks in order)."""
    from cxpar.ast.nodes import Node, child_fields

    level: list[Node] = [program]
    fields_of: dict[type, tuple[str, ...]] = {}
    for _ in range(limit + 1):
        below: list[Node] = []
        add, extend = below.append, below.extend
        for node in level:
            cls = type(node)
            names = fields_of.get(cls)
            if names is None:
                names = fields_of[cls] = child_fields(cls)
            for name in names:
                value = getattr(node, name)
                if isinstance(value, Node):
                    add(value)
                elif isinstance(value, list):
                    extend(v for v in value if isinstance(v, Node))
        if not below:
            return True
        level = below
    return False


def front_end_source(source: SourceFile, *, syntax_only: bool = False,
                     extra_services: dict[str, str] | None = None,
                     parser: Callable[[SourceFile], ParseResult] = parse) -> FrontEnd:
    """Parse and (unless ``syntax_only``) analyse an in-memory source.

    ``parser`` replaces :func:`~cxpar.syntax.parser.parse` with one that gives the same
    result (the editor's :class:`~cxpar.syntax.incremental.IncrementalParser`)."""
    fe = FrontEnd(source.name, source)
    result = parser(source)
    if result.ok and result.program is not None and not result.program.body:
        # Blank, or only comments: valid, and does nothing.
        fe.diagnostics.append(warning("CX004", "empty file", Span(source.name, 1, 1, 1, 2),
                                      label="nothing to check"))
    fe.diagnostics.extend(result.diagnostics)
    fe.program = result.program
    if result.program is not None and result.ok:
        too_deep = check_depth(result.program)
        if too_deep is not None:
            fe.diagnostics.append(too_deep)
            return fe
    if result.program is None or not result.ok or syntax_only:
        return fe
    comp = Compilation(source, result.program, extra_services=dict(extra_services or {}))
    analyse(comp)
    fe.compilation = comp
    fe.diagnostics.extend(comp.diagnostics)
    return fe


def front_end(path: Path, name: str | None = None, *, syntax_only: bool = False,
              extra_services: dict[str, str] | None = None) -> FrontEnd:
    """Read, parse and analyse one file."""
    shown = name if name is not None else str(path)
    loaded = read_source(path, shown)
    if isinstance(loaded, Diagnostic):
        return FrontEnd(shown, None, diagnostics=[loaded])
    return front_end_source(loaded, syntax_only=syntax_only, extra_services=extra_services)
