"""Serializers of the stream execution graph: text (rich tree), Mermaid, Graphviz dot, JSON.

One data model (:class:`cxpar.analysis.graph.Graph`), one function per format; the JSON
schema is documented in ``docs/cli.md`` (``cxpar graph``).
"""

from __future__ import annotations

import io
import json
from typing import Any

from cxpar.analysis.graph import GNode, Graph
from cxpar.analysis.schedule import LimitEstimate

FORMATS = ("text", "mermaid", "dot", "json")
SCHEMA_VERSION = 1


def fmt_ms(ms: float) -> str:
    """``800`` → ``800 ms``, ``1.5`` → ``1.5 ms``."""
    text = f"{ms:.1f}".rstrip("0").rstrip(".")
    return f"{text} ms"


def title(x: GNode) -> str:
    """The short human label of a node."""
    if x.kind == "program":
        return "top level"
    if x.kind == "handler":
        return f"on {x.label}" + (" (recursive, not unfolded)" if x.detail.get("recursive")
                                   else "")
    if x.kind == "call":
        return f"{x.label} ({fmt_ms(x.duration)})"
    if x.kind == "emit":
        return f"emit {x.label}" + (" (runtime)" if x.detail.get("runtime") else "")
    if x.kind == "item":
        return f"then {x.label}"
    if x.kind == "branch":
        return f"∥ {x.label}"
    return x.label


def critical_edges(g: Graph) -> set[tuple[int, int]]:
    path = g.critical_path
    return set(zip(path, path[1:], strict=False))


def summary_lines(g: Graph) -> list[str]:
    """Batches, critical path and the time estimate as plain lines."""
    out = []
    for i, batch in enumerate(g.batches):
        calls = [g.nodes[j] for j in batch if g.nodes[j].kind == "call"]
        if not calls:
            continue
        start = min(x.start for x in calls)
        end = max(x.finish for x in calls)
        names: dict[str, int] = {}
        for x in calls:
            names[x.label] = names.get(x.label, 0) + 1
        what = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in names.items())
        out.append(f"batch {i}: {what}  [{fmt_ms(start)} – {fmt_ms(end)}]")
    out.append("critical path: " + " → ".join(title(g.nodes[i]) for i in g.critical_path
                                               if g.nodes[i].kind not in ("join",)))
    out.append(f"estimated {fmt_ms(g.estimated_ms)} · sequential {fmt_ms(g.sequential_ms)}"
               f" · speedup {g.speedup:.2f}×")
    if g.truncated:
        out.append("note: the graph was truncated (too many nodes); estimates are partial")
    if g.unknown_durations:
        n = g.unknown_durations
        out.append(f"note: {n} `await`{'s' if n != 1 else ''} of unknown duration "
                   f"count{'' if n != 1 else 's'} as 0 ms: the estimate is a lower bound")
    return out


def to_text(g: Graph, *, colour: bool = False, width: int = 100) -> str:
    """A rich tree of the unfolded program, then batches and the critical path."""
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    def line(x: GNode) -> Text:
        t = Text()
        mark = "★ " if x.critical else ""
        style = "bold red" if x.critical else ("cyan" if x.kind == "call" else "")
        t.append(mark + title(x), style=style)
        if x.kind in ("call", "handler"):
            t.append(f"  {fmt_ms(x.start)}–{fmt_ms(x.finish)} · batch {x.batch}", style="dim")
        return t

    kids: dict[int | None, list[GNode]] = {}
    for x in g.nodes:
        kids.setdefault(x.parent, []).append(x)
    roots = kids.get(None, [])
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=colour, no_color=not colour, width=width,
                      highlight=False)
    for root in roots:
        tree = Tree(line(root))
        stack: list[tuple[GNode, Tree]] = [(root, tree)]
        while stack:
            node, branch = stack.pop()
            children = kids.get(node.id, [])
            added = [(c, branch.add(line(c))) for c in children]
            stack.extend(reversed(added))
        console.print(tree)
    for s in summary_lines(g):
        style = "bold" if s.startswith("estimated") else ""
        console.print(Text(s, style=style))
    return buf.getvalue()


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


_MERMAID_SHAPES = {"program": ('(["', '"])'), "handler": ('["', '"]'), "call": ('[["', '"]]'),
                   "branch": ('{{"', '"}}'), "join": ('(("', '"))'), "emit": ('>"', '"]'),
                   "item": ('[/"', '"/]')}


def to_mermaid(g: Graph) -> str:
    """A Mermaid flowchart; the critical path is drawn with thick edges and red nodes."""
    lines = ["flowchart TD"]
    for x in g.nodes:
        left, right = _MERMAID_SHAPES.get(x.kind, ('["', '"]'))
        lines.append(f"    n{x.id}{left}{_mermaid_label(title(x))}{right}")
    crit = critical_edges(g)
    for e in g.edges:
        if (e.src, e.dst) in crit:
            arrow = "==>"
        elif e.kind in ("fanout", "trigger"):
            arrow = "-.->"
        else:
            arrow = "-->"
        label = f"|{e.kind}|" if e.kind not in ("seq",) else ""
        lines.append(f"    n{e.src} {arrow}{label} n{e.dst}")
    lines.append("    classDef critical fill:#fdd,stroke:#c00,stroke-width:2px")
    if g.critical_path:
        lines.append("    class " + ",".join(f"n{i}" for i in g.critical_path) + " critical")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_SHAPES = {"program": "oval", "handler": "box", "call": "box3d", "branch": "hexagon",
               "join": "circle", "emit": "cds", "item": "parallelogram"}


def to_dot(g: Graph) -> str:
    """A Graphviz digraph; critical nodes and edges are red."""
    lines = ["digraph cx {", "    rankdir=TB;",
             '    node [fontname="Helvetica", fontsize=10];',
             '    edge [fontname="Helvetica", fontsize=9];',
             "    label=" + _dot_quote(summary_lines(g)[-1 if not g.truncated else -2]) + ";"]
    for x in g.nodes:
        attrs = [f"label={_dot_quote(title(x))}", f"shape={_DOT_SHAPES.get(x.kind, 'box')}"]
        if x.critical:
            attrs += ["color=red", "penwidth=2"]
        lines.append(f"    n{x.id} [{', '.join(attrs)}];")
    crit = critical_edges(g)
    for e in g.edges:
        attrs = []
        if e.kind != "seq":
            attrs.append(f"label={_dot_quote(e.kind)}")
        if e.kind in ("fanout", "trigger"):
            attrs.append("style=dashed")
        if (e.src, e.dst) in crit:
            attrs += ["color=red", "penwidth=2"]
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    n{e.src} -> n{e.dst}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_data(g: Graph) -> dict[str, Any]:
    """The JSON document as Python data (schema in docs/cli.md)."""
    crit = critical_edges(g)

    def node(x: GNode) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": x.id, "kind": x.kind, "label": x.label, "parent": x.parent,
            "duration_ms": x.duration, "start_ms": x.start, "finish_ms": x.finish,
            "batch": x.batch, "critical": x.critical,
            "span": None if x.span is None else {
                "file": x.span.file, "line": x.span.line, "col": x.span.col,
                "end_line": x.span.end_line, "end_col": x.span.end_col},
        }
        d.update({k: v for k, v in x.detail.items() if not k.startswith("_")})
        return d

    return {
        "version": SCHEMA_VERSION,
        "estimated_ms": g.estimated_ms,
        "sequential_ms": g.sequential_ms,
        "speedup": round(g.speedup, 4),
        "truncated": g.truncated,
        "unknown_durations": g.unknown_durations,
        "latency": g.latency,
        "batches": g.batches,
        "critical_path": g.critical_path,
        "nodes": [node(x) for x in g.nodes],
        "edges": [{"from": e.src, "to": e.dst, "kind": e.kind,
                   "critical": (e.src, e.dst) in crit} for e in g.edges],
    }


def to_json(g: Graph) -> str:
    """One JSON document (indented) with a trailing newline."""
    return json.dumps(to_data(g), indent=2, ensure_ascii=False) + "\n"


def limit_lines(est: LimitEstimate) -> list[str]:
    """``cxpar graph --limit N``: the makespan estimate under the limit, as plain lines."""
    return [f"with --max-concurrency {est.limit}: estimated {fmt_ms(est.program_ms)} "
            f"(--schedule program), {fmt_ms(est.fifo_ms)} (fifo)",
            f"lower bound {fmt_ms(est.bound_ms)} = max(provider time "
            f"{fmt_ms(est.work_ms)} / {est.limit}, critical path "
            f"{fmt_ms(est.unlimited_ms)})"]


def render(g: Graph, fmt: str, *, colour: bool = False,
           limit: LimitEstimate | None = None) -> str:
    """Serialize ``g`` as ``fmt`` (one of :data:`FORMATS`); ``limit``: also the makespan
    estimate under a concurrency limit (``cxpar graph --limit N``)."""
    if fmt == "json":
        data = to_data(g)
        if limit is not None:
            data["limit"] = {"max_concurrency": limit.limit, "program_ms": limit.program_ms,
                             "fifo_ms": limit.fifo_ms, "work_ms": limit.work_ms,
                             "lower_bound_ms": limit.bound_ms}
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    extra = limit_lines(limit) if limit is not None else []
    if fmt == "text":
        return to_text(g, colour=colour) + "".join(line + "\n" for line in extra)
    if fmt == "mermaid":
        return to_mermaid(g) + "".join(f"%% {line}\n" for line in extra)
    if fmt == "dot":
        return to_dot(g) + "".join(f"// {line}\n" for line in extra)
    raise ValueError(f"unknown graph format `{fmt}`")
