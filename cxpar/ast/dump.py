"""``cxpar compile --emit ast``: the AST as a readable tree or as JSON."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from cxpar.ast.nodes import Node


def _scalars(node: Node) -> list[tuple[str, Any]]:
    out = []
    for f in fields(node):  # type: ignore[arg-type]
        if f.name == "span":
            continue
        value = getattr(node, f.name)
        if isinstance(value, Node) or (isinstance(value, list) and value
                                       and isinstance(value[0], Node)):
            continue
        if isinstance(value, list) and not value:
            continue
        if value is None or value is False:
            continue
        out.append((f.name, value))
    return out


def _kids(node: Node) -> list[tuple[str, Node]]:
    out: list[tuple[str, Node]] = []
    for f in fields(node):  # type: ignore[arg-type]
        value = getattr(node, f.name)
        if isinstance(value, Node) and f.name != "span":
            out.append((f.name, value))
        elif isinstance(value, list):
            out.extend((f.name, v) for v in value if isinstance(v, Node))
    return out


def dump_text(root: Node) -> str:
    """An indented tree: ``Kind attr=value @line:col`` per node, children indented."""
    lines: list[str] = []
    stack: list[tuple[Node, int, str]] = [(root, 0, "")]
    while stack:
        node, depth, label = stack.pop()
        attrs = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" if isinstance(v, str)
                         else f"{k}={v!r}" for k, v in _scalars(node))
        s = node.span
        head = f"{'  ' * depth}{label + ': ' if label else ''}{type(node).__name__}"
        lines.append(f"{head}{' ' + attrs if attrs else ''}  @{s.line}:{s.col}-{s.end_line}:{s.end_col}")
        for name, kid in reversed(_kids(node)):
            stack.append((kid, depth + 1, name))
    return "\n".join(lines) + "\n"


def to_json(node: Node) -> Any:
    """A JSON-able dict: ``{"node", "span": [line, col, end_line, end_col], fields...}``.

    The kind is under ``node`` because ``type`` is a field (of VarDecl and Param).
    """
    out: dict[str, Any] = {"node": type(node).__name__}
    s = node.span
    out["span"] = [s.line, s.col, s.end_line, s.end_col]
    for f in fields(node):  # type: ignore[arg-type]
        if f.name == "span":
            continue
        value = getattr(node, f.name)
        if isinstance(value, Node):
            out[f.name] = to_json(value)
        elif isinstance(value, list):
            out[f.name] = [to_json(v) if isinstance(v, Node) else v for v in value]
        else:
            out[f.name] = value
    return out


def dump_json(root: Node) -> str:
    return json.dumps(to_json(root), ensure_ascii=False, indent=1) + "\n"
