"""Pass `cycles`: recursion through parallel handler parameters (SPEC §4.4, rule 18).

A handler whose service call has a branch ``key: a.b`` calls every subscriber of
``a.b`` one level deeper. A cycle in that "calls" relation recurses until the depth
limit (64) fails a branch with ``depth``; each strongly connected component is
reported once as a warning at the first branch that closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxpar import lang
from cxpar.analysis.model import Branch, HandlerInfo
from cxpar.ast import nodes as n
from cxpar.diagnostics.model import warning

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

def components(edges: dict[int, list[int]], count: int) -> list[list[int]]:
    """Strongly connected components (iterative Tarjan), each with a cycle."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    counter = 0
    for root in range(count):
        if root in index:
            continue
        work: list[tuple[int, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            succ = edges.get(v, [])
            if i < len(succ):
                work.append((v, i + 1))
                w = succ[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
            if low[v] == index[v]:
                comp: list[int] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in succ:
                    out.append(sorted(comp))
    return out


def run(comp: Compilation) -> None:
    """Warn once per cycle of handlers calling each other through branches."""
    info = comp.info
    handlers: list[HandlerInfo] = info.handlers
    pos = {id(h.node): i for i, h in enumerate(handlers)}
    targets: dict[int, dict[int, None]] = {}  # insertion-ordered sets
    via: dict[tuple[int, int], Branch] = {}
    for call in info.call_list:
        if not isinstance(call.owner, n.OnHandler) or id(call.owner) not in pos:
            continue
        src = pos[id(call.owner)]
        for b in call.branches:
            for h in info.subscribers(b.event):
                dst = pos[id(h.node)]
                targets.setdefault(src, {})[dst] = None
                via.setdefault((src, dst), b)
    edges = {src: list(dsts) for src, dsts in targets.items()}
    for scc in components(edges, len(handlers)):
        members = set(scc)
        first = min((via[(s, d)] for s in scc for d in edges.get(s, []) if d in members),
                    key=lambda b: (b.span.line, b.span.col))
        names = " → ".join(dict.fromkeys(handlers[i].event for i in scc))
        comp.diagnostics.append(warning(
            "CX407", f"cycle through parallel handler parameters: {names}", first.span,
            label=f"`{first.event}` can call this handler again",
            help=f"recursion stops at depth {lang.MAX_DEPTH}: deeper branches fail with "
                 "`depth`; add a base case or use `emit` instead"))
