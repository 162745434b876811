"""Where each event, variable, entity and service call of a program is written.

Built once per analysis from the AST and the analysis tables (no re-resolution):
definition, references, hover and rename are look-ups in this index.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from cxpar.analysis.model import Binding, NameKind, ProgramInfo
from cxpar.ast import nodes as n
from cxpar.ast.visit import walk
from cxpar.span import Span

EVENT, VAR, ENTITY, SERVICE = "event", "var", "entity", "service"


@dataclass(frozen=True, eq=False)
class Occurrence:
    """One written name.

    ``role``: for events ``on`` (subscribes), ``emit``, ``branch`` (a parallel handler
    parameter), ``item`` (a ``handlers`` item) or ``ref``; for variables and entities
    ``decl`` or ``use``; for services ``call``.
    """

    kind: str
    name: str
    role: str
    span: Span
    node: n.Node | None = None
    binding: Binding | None = None

    @property
    def start(self) -> int:
        return self.span.start

    @property
    def end(self) -> int:
        return self.span.end


@dataclass
class Index:
    occurrences: list[Occurrence] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)

    def finish(self) -> None:
        self.occurrences.sort(key=lambda o: (o.start, -o.end))
        self._starts = [o.start for o in self.occurrences]

    def at(self, offset: int) -> Occurrence | None:
        """The innermost occurrence containing ``offset`` (its end included, so a cursor
        just after a name finds it)."""
        best: Occurrence | None = None
        hi = bisect.bisect_right(self._starts, offset)
        for o in self.occurrences[max(0, hi - 64):hi]:
            if o.start <= offset <= o.end and (best is None or o.end - o.start
                                               <= best.end - best.start):
                best = o
        return best

    def same(self, occ: Occurrence) -> list[Occurrence]:
        """Every occurrence of the same event, variable or entity."""
        if occ.kind == VAR:
            return [o for o in self.occurrences if o.kind == VAR and o.binding is occ.binding]
        return [o for o in self.occurrences if o.kind == occ.kind and o.name == occ.name]

    def of_kind(self, kind: str, role: str | None = None) -> list[Occurrence]:
        return [o for o in self.occurrences
                if o.kind == kind and (role is None or o.role == role)]


#: The nodes :func:`build` records (every other node is skipped with one check).
_INDEXED = (n.OnHandler, n.Emit, n.EventPayload, n.EntityDecl, n.New, n.ServiceCall, n.Name,
            n.Member)


def build(program: n.Program, info: ProgramInfo, nodes: list[n.Node] | None = None) -> Index:
    """The index of ``program`` (``nodes``: its nodes in pre-order, if already walked)."""
    idx = Index()
    add = idx.occurrences.append
    branch_values = {id(b.value): b for c in info.call_list for b in c.branches}
    item_spans = {(it.span.start, it.span.end) for c in info.call_list for it in c.items}
    event_refs: list[tuple[n.Node, str]] = []
    for node in walk(program) if nodes is None else nodes:
        if not isinstance(node, _INDEXED):
            continue
        if isinstance(node, n.OnHandler):
            add(Occurrence(EVENT, node.event.dotted, "on", node.event.span, node))
        elif isinstance(node, n.Emit):
            add(Occurrence(EVENT, node.event.dotted, "emit", node.event.span, node))
        elif isinstance(node, n.EventPayload):
            role = "branch" if id(node) in branch_values else "item"
            add(Occurrence(EVENT, node.event.dotted, role, node.event.span, node))
        elif isinstance(node, n.EntityDecl):
            add(Occurrence(ENTITY, node.name.name, "decl", node.name.span, node))
            if node.base is not None:
                add(Occurrence(ENTITY, node.base.name, "use", node.base.span, node))
        elif isinstance(node, n.New):
            add(Occurrence(ENTITY, node.cls.name, "use", node.cls.span, node))
        elif isinstance(node, n.ServiceCall):
            add(Occurrence(SERVICE, node.service.name, "call", node.service.span, node))
        elif isinstance(node, n.Name | n.Member):
            ref = info.ref(node)
            if ref is None:
                continue
            if ref.kind is NameKind.EVENT:
                event_refs.append((node, ref.name))
            elif isinstance(node, n.Name) and ref.binding is not None:
                add(Occurrence(VAR, node.id, "use", node.span, node, ref.binding))
            elif isinstance(node, n.Name) and ref.kind is NameKind.ENTITY:
                add(Occurrence(ENTITY, node.id, "use", node.span, node))
    # An event chain `a.b.c` classifies every Member and its root Name: keep the outermost.
    outer: list[tuple[n.Node, str]] = []
    for node, name in sorted(event_refs, key=lambda x: (x[0].span.start, -x[0].span.end)):
        if outer and node.span.end <= outer[-1][0].span.end:
            continue
        outer.append((node, name))
    for node, name in outer:
        key = (node.span.start, node.span.end)
        role = "branch" if id(node) in branch_values else "item" if key in item_spans \
            else "ref"
        add(Occurrence(EVENT, name, role, node.span, node))
    for b in info.bindings.values():
        add(Occurrence(VAR, b.name, "decl", b.span, b.decl, b))
    idx.finish()
    return idx
