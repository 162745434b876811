"""Static trip counts of counting loops, for estimates made before running
(``cxpar graph --cost``).

A loop's trip count is known when it counts a variable from a literal to a literal by a
literal step, and nothing else in the loop assigns that variable::

    for (var i = 0; i < 10; i++) { ... }              // 10
    var k = 1; while (k <= 5) { ...; k += 2; }         // 3 (1, 3, 5)

(the ``while`` form: the variable's literal start is the statement just before the
loop, its step a top-level statement of the body). ``for (x in [a, b, c])`` over an
array literal runs once per item. Anything else — a condition on something computed, a
``break`` that may end the loop early is ignored (the count is then an upper bound) —
is *unknown*: such a loop counts once, and :func:`trip_counts` says how many there were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cxpar.ast import nodes as n
from cxpar.ast.visit import Visitor, walk

__all__ = ["Trips", "trip_counts"]

#: Loops counted above this many trips are treated as unknown (a typo, not a plan).
MAX_TRIPS = 10_000_000


@dataclass
class Trips:
    """How many times each service call runs per run of the code around it."""

    #: (line, col) of a service call → the product of its enclosing loops' trip counts.
    times: dict[tuple[int, int], int] = field(default_factory=dict)
    #: Loops with calls inside whose trip count is not known before running.
    unknown: int = 0


def trip_counts(program: n.Program) -> Trips:
    """The :class:`Trips` of every service call in ``program``."""
    v = _Loops()
    v.visit(program)
    return v.trips


class _Loops(Visitor):
    def __init__(self) -> None:
        self.trips = Trips()
        self.mult = 1

    def visit_Program(self, node: n.Program) -> None:
        self._seq(node.body)

    def visit_Block(self, node: n.Block) -> None:
        self._seq(node.body)

    def _seq(self, body: list[n.Stmt]) -> None:
        prev: n.Stmt | None = None
        for st in body:
            if isinstance(st, n.While):
                self.visit(st.cond)
                self._loop(st.body, _while_trips(st, prev))
            else:
                self.visit(st)
            prev = st

    def visit_While(self, node: n.While) -> None:  # not directly in a block
        self.visit(node.cond)
        self._loop(node.body, None)

    def visit_ForC(self, node: n.ForC) -> None:
        for part in (node.init, node.cond, node.update):
            if part is not None:
                self.visit(part)
        self._loop(node.body, _for_trips(node))

    def visit_ForIn(self, node: n.ForIn) -> None:
        self.visit(node.iterable)
        it = node.iterable
        self._loop(node.body, len(it.items) if isinstance(it, n.Array) else None)

    def visit_OnHandler(self, node: n.OnHandler) -> None:
        saved, self.mult = self.mult, 1  # a handler's body runs per event, not per loop
        self.generic_visit(node)
        self.mult = saved

    def visit_ServiceCall(self, node: n.ServiceCall) -> None:
        self.trips.times[(node.span.line, node.span.col)] = self.mult
        self.generic_visit(node)

    def _loop(self, body: n.Stmt, count: int | None) -> None:
        if count is None:
            if any(isinstance(x, n.ServiceCall) for x in walk(body)):
                self.trips.unknown += 1
            count = 1
        saved, self.mult = self.mult, self.mult * count
        self.visit(body)
        self.mult = saved


def _num(e: n.Expr | None) -> float | None:
    """A number literal, also negated (``-3``)."""
    if isinstance(e, n.Number):
        return e.value
    if isinstance(e, n.Unary) and e.op == "-" and isinstance(e.operand, n.Number):
        return -e.operand.value
    return None


def _literal_start(st: n.Stmt | None, var: str) -> float | None:
    """``var x = NUM`` or ``x = NUM``: NUM."""
    if isinstance(st, n.VarDecl) and st.name.name == var:
        return _num(st.init)
    if isinstance(st, n.ExprStmt):
        e = st.expr
        if isinstance(e, n.Assign) and e.op == "=" and isinstance(e.target, n.Name) \
                and e.target.id == var:
            return _num(e.value)
    return None


def _step(e: n.Expr | None, var: str) -> float | None:
    """``x += NUM`` (also ``x++``) → NUM, ``x -= NUM`` → -NUM."""
    if isinstance(e, n.Assign) and e.op in ("+=", "-=") and isinstance(e.target, n.Name) \
            and e.target.id == var:
        v = _num(e.value)
        return None if v is None else v if e.op == "+=" else -v
    return None


def _bound(cond: n.Expr | None) -> tuple[str, str, float] | None:
    """``x < NUM`` (``<=``, ``>``, ``>=``): (x, op, NUM)."""
    if isinstance(cond, n.Binary) and cond.op in ("<", "<=", ">", ">=") \
            and isinstance(cond.left, n.Name):
        end = _num(cond.right)
        if end is not None:
            return cond.left.id, cond.op, end
    return None


def _assigns(node: n.Node, var: str) -> int:
    return sum(1 for x in walk(node) if isinstance(x, n.Assign)
               and isinstance(x.target, n.Name) and x.target.id == var)


def _count(start: float, op: str, end: float, step: float) -> int | None:
    if op in ("<", "<=") and step > 0:
        span = (end - start) / step
    elif op in (">", ">=") and step < 0:
        span = (start - end) / -step
    else:
        return None
    if op in ("<", ">"):
        trips = math.ceil(span)
    else:
        trips = math.floor(span) + 1
    trips = max(0, trips)
    return trips if trips <= MAX_TRIPS else None


def _for_trips(loop: n.ForC) -> int | None:
    b = _bound(loop.cond)
    if b is None or loop.init is None:
        return None
    var, op, end = b
    start, step = _literal_start(loop.init, var), _step(loop.update, var)
    if start is None or step is None or _assigns(loop.body, var):
        return None
    return _count(start, op, end, step)


def _while_trips(loop: n.While, prev: n.Stmt | None) -> int | None:
    b = _bound(loop.cond)
    if b is None:
        return None
    var, op, end = b
    start = _literal_start(prev, var)
    body = loop.body.body if isinstance(loop.body, n.Block) else [loop.body]
    steps = [s for st in body if isinstance(st, n.ExprStmt)
             for s in [_step(st.expr, var)] if s is not None]
    if start is None or len(steps) != 1 or _assigns(loop.body, var) != 1:
        return None
    return _count(start, op, end, steps[0])
