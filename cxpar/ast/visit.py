"""Visitors over the CX AST (pycparser's ``NodeVisitor`` style)."""

from __future__ import annotations

from typing import Any

from cxpar.ast.nodes import Node, child_fields


class Visitor:
    """Dispatches ``visit(node)`` to ``visit_<ClassName>``, else :meth:`generic_visit`."""

    def visit(self, node: Node) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            return self.generic_visit(node)
        return method(node)

    def generic_visit(self, node: Node) -> Any:
        """Visit every child in source order."""
        for name in child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, Node):
                self.visit(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, Node):
                        self.visit(item)
        return None


def walk(node: Node) -> list[Node]:
    """Every node under ``node`` (included), pre-order, without recursion."""
    out: list[Node] = []
    stack = [node]
    pop, push, add = stack.pop, stack.append, out.append
    backwards = _BACKWARDS
    while stack:
        n = pop()
        add(n)
        cls = type(n)
        names = backwards.get(cls)
        if names is None:
            names = backwards[cls] = tuple(reversed(child_fields(cls)))
        # Children are pushed last to first, so they come off the stack in source order.
        for name in names:
            value = getattr(n, name)
            if isinstance(value, Node):
                push(value)
            elif isinstance(value, list):
                for item in reversed(value):
                    if isinstance(item, Node):
                        push(item)
    return out


#: Each node class's child fields, last to first (for :func:`walk`).
_BACKWARDS: dict[type, tuple[str, ...]] = {}
