"""Scheduling estimates from the stream execution graph (issue 17).

- :func:`call_paths`: for every service-call site, the services on the longest path
  from the call's start to the end of its program (its *b-level*, the critical path it
  heads). The runtime orders the waiting calls of one program by it (longest first),
  recomputing the length from observed latencies; the path's make-up is fixed here.
- :func:`makespan_under_limit`: list scheduling of the graph with at most ``limit``
  provider calls at once, in program order (longest b-level first) or FIFO: what
  ``cxpar graph --limit N`` prints.

Handlers the top level never reaches (``input.record`` of a batch program, handlers of
runtime events) are unfolded as roots of their own, so every call site has an estimate.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxpar.analysis.graph import START_EDGES, Builder, GNode, Graph, _Budget

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

__all__ = ["CallPath", "call_paths", "blevels", "makespan_under_limit", "LimitEstimate"]

#: One call site's critical path: ``(service, calls on the path, their static ms)``.
CallPath = tuple[tuple[str, int, float], ...]

#: Services that never take a provider slot.
_NO_SLOT = frozenset({"await"})


def blevels(g: Graph) -> tuple[list[float], list[float], list[dict[str, list[float]]]]:
    """Per node: ``own`` (its start to the end of the graph through its own duration),
    ``bl`` (the longest path from its start, also through calls it fans out to) and the
    make-up of ``own``'s path (service → [calls, ms]). Nodes are in topological order."""
    succ: dict[int, list[tuple[int, bool]]] = {}
    for e in g.edges:
        succ.setdefault(e.src, []).append((e.dst, e.kind in START_EDGES))
    n = len(g.nodes)
    own = [0.0] * n
    bl = [0.0] * n
    mix: list[dict[str, list[float]]] = [{} for _ in range(n)]
    via: list[int | None] = [None] * n  # bl's path continues at this node (its own path)
    for x in reversed(g.nodes):
        after, after_id = 0.0, None
        fan, fan_id = 0.0, None
        for dst, at_start in succ.get(x.id, ()):
            if at_start:
                if bl[dst] > fan:
                    fan, fan_id = bl[dst], dst
            elif bl[dst] > after or after_id is None:
                after, after_id = bl[dst], dst
        own[x.id] = x.duration + after
        m = {k: list(v) for k, v in _path_mix(after_id, mix, via).items()}
        if x.kind == "call":
            svc = str(x.detail.get("service", x.label))
            c = m.setdefault(svc, [0.0, 0.0])
            c[0] += 1
            c[1] += x.duration
        mix[x.id] = m
        if fan > own[x.id]:
            bl[x.id], via[x.id] = fan, fan_id
        else:
            bl[x.id] = own[x.id]
    return own, bl, mix


def _path_mix(node: int | None, mix: list[dict[str, list[float]]],
              via: list[int | None]) -> dict[str, list[float]]:
    """The make-up of ``bl[node]``'s path (following fan-outs to the branch that wins)."""
    while node is not None and via[node] is not None:
        node = via[node]
    return mix[node] if node is not None else {}


def _roots(comp: Compilation) -> list[Graph]:
    """The program's graph plus one graph per handler it never reaches."""
    graphs = [comp.graph] if comp.graph is not None else []
    reached = {(x.detail.get("event"), x.detail.get("entity")) for g in graphs
               for x in g.nodes if x.kind == "handler"}
    lat = dict(comp.graph.latency) if comp.graph is not None else {}
    for h in comp.info.handlers:
        if (h.event, h.entity) in reached:
            continue
        b = Builder(comp.info, lat)
        try:
            root = b.node("program", h.event, h.node.span, None)
            b.handler(h, root.id)
        except _Budget:
            pass
        b.schedule()
        graphs.append(b.g)
    return graphs


def call_paths(comp: Compilation) -> dict[tuple[int, int], CallPath]:
    """``(line, col)`` of each call site → its critical path (longest over the places
    the site is unfolded)."""
    best: dict[tuple[int, int], tuple[float, CallPath]] = {}
    for g in _roots(comp):
        own, _bl, mix = blevels(g)
        for x in g.nodes:
            if x.kind != "call" or x.span is None:
                continue
            key = (x.span.line, x.span.col)
            if key in best and best[key][0] >= own[x.id]:
                continue
            path = tuple(sorted((svc, int(c), round(ms, 3)) for svc, (c, ms)
                                in mix[x.id].items()))
            best[key] = (own[x.id], path)
    return {k: v[1] for k, v in best.items()}


@dataclass(frozen=True)
class LimitEstimate:
    """``cxpar graph --limit N``: the program's makespan with N provider calls at once."""

    limit: int
    program_ms: float            #: waiting calls in program order (longest path first)
    fifo_ms: float               #: waiting calls in the order they became ready
    unlimited_ms: float          #: the graph's own estimate (no limit)
    work_ms: float               #: all provider time
    #: max(work / limit, critical path): no schedule can be shorter.
    bound_ms: float


def makespan_under_limit(g: Graph, limit: int) -> LimitEstimate:
    """List-schedule ``g`` on ``limit`` slots (calls other than ``await`` take one)."""
    own, _bl, _mix = blevels(g)
    work = sum(x.duration for x in g.nodes if _slot(x))
    prog = _list_schedule(g, limit, lambda x, seq: (-own[x.id], seq))
    fifo = _list_schedule(g, limit, lambda x, seq: (0.0, seq))
    return LimitEstimate(limit, prog, fifo, g.estimated_ms, work,
                         max(work / limit if limit else 0.0, g.estimated_ms))


def _slot(x: GNode) -> bool:
    return x.kind == "call" and x.detail.get("service") not in _NO_SLOT


def _list_schedule(g: Graph, limit: int, key: object) -> float:
    """Event simulation: a node starts when its predecessors allow and, for a provider
    call, when a slot is free; ``key(node, ready_seq)`` orders waiting calls."""
    preds: dict[int, list[tuple[int, bool]]] = {}
    for e in g.edges:
        preds.setdefault(e.dst, []).append((e.src, e.kind in START_EDGES))
    blocking = {x.id: len(preds.get(x.id, ())) for x in g.nodes}
    succ: dict[int, list[tuple[int, bool]]] = {}
    for e in g.edges:
        succ.setdefault(e.src, []).append((e.dst, e.kind in START_EDGES))
    order = key  # type: ignore[assignment]
    events: list[tuple[float, int, int, int]] = []  # (time, kind 0=finish 1=start, seq, id)
    waiting: list[tuple[tuple[float, int], int]] = []
    free = limit
    seq = 0
    end = 0.0

    def ready(ids: Iterable[int], now: float) -> None:
        nonlocal seq
        for i in ids:
            seq += 1
            x = g.nodes[i]
            if _slot(x):  # issued: its branches start now, the call when it has a slot
                heapq.heappush(waiting, (order(x, seq), i))  # type: ignore[operator]
                satisfy(succ.get(i, ()), True, now)
            else:
                heapq.heappush(events, (now, 1, seq, i))

    def satisfy(edges: Iterable[tuple[int, bool]], started: bool, now: float) -> None:
        out = []
        for dst, at_start in edges:
            if at_start == started:
                blocking[dst] -= 1
                if blocking[dst] == 0:
                    out.append(dst)
        ready(out, now)

    ready([x.id for x in g.nodes if blocking[x.id] == 0], 0.0)
    now = 0.0
    while True:
        # like the runtime's anticipation: every call issued at this instant competes
        while waiting and free > 0 and (not events or events[0][0] > now):
            _, i = heapq.heappop(waiting)
            free -= 1
            seq += 1
            heapq.heappush(events, (now, 1, seq, i))
        if not events:
            break
        now, kind, _, i = heapq.heappop(events)
        x = g.nodes[i]
        if kind == 1:  # started
            if not _slot(x):
                satisfy(succ.get(i, ()), True, now)
            seq += 1
            heapq.heappush(events, (now + x.duration, 0, seq, i))
        else:
            if _slot(x):
                free += 1
            end = max(end, now)
            satisfy(succ.get(i, ()), False, now)
    return end
