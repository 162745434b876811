"""CX abstract syntax tree.

One slotted dataclass per construct, each with a required ``span`` and no logic
(pycparser's ``c_ast`` style). Children are discovered through :func:`child_fields`,
computed once per class, so visitors and printers never hard-code field lists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias

from cxpar.span import Span


@dataclass(slots=True, kw_only=True, eq=False)
class Node:
    """Base of every AST node."""

    span: Span


# ----------------------------------------------------------------------------- names


@dataclass(slots=True, kw_only=True, eq=False)
class Ident(Node):
    """A bare identifier used as a label (entity name, parameter, property key)."""

    name: str


@dataclass(slots=True, kw_only=True, eq=False)
class EventName(Node):
    """A dotted event name as written in `on`, `emit` and `handlers` (``a.b.c``)."""

    parts: list[str]

    @property
    def dotted(self) -> str:
        return ".".join(self.parts)


@dataclass(slots=True, kw_only=True, eq=False)
class TypeRef(Node):
    """A type annotation: ``conscious``, ``string``, ``array<T>``, ``Name[]``."""

    name: str
    args: list[TypeRef] = field(default_factory=list)
    is_array: bool = False


@dataclass(slots=True, kw_only=True, eq=False)
class Param(Node):
    """A parameter of `realize` or an `on` handler, optionally typed."""

    name: Ident
    type: TypeRef | None = None


# ----------------------------------------------------------------------- expressions


@dataclass(slots=True, kw_only=True, eq=False)
class Expr(Node):
    """Base of expressions."""


@dataclass(slots=True, kw_only=True, eq=False)
class Number(Expr):
    value: float
    text: str


@dataclass(slots=True, kw_only=True, eq=False)
class String(Expr):
    value: str
    raw: str


@dataclass(slots=True, kw_only=True, eq=False)
class Bool(Expr):
    value: bool


@dataclass(slots=True, kw_only=True, eq=False)
class Null(Expr):
    pass


@dataclass(slots=True, kw_only=True, eq=False)
class Name(Expr):
    """An identifier in expression position (a variable, `self`, entity, builtin...)."""

    id: str


@dataclass(slots=True, kw_only=True, eq=False)
class This(Expr):
    pass


@dataclass(slots=True, kw_only=True, eq=False)
class Member(Expr):
    """``obj.name``; a chain of these rooted at an unbound name is an event reference."""

    obj: Expr
    name: Ident


@dataclass(slots=True, kw_only=True, eq=False)
class Index(Expr):
    obj: Expr
    index: Expr


@dataclass(slots=True, kw_only=True, eq=False)
class Call(Expr):
    func: Expr
    args: list[Expr]


@dataclass(slots=True, kw_only=True, eq=False)
class New(Expr):
    """``new Name(args)``, or the older ``new Name { ... }`` (one object argument)."""

    cls: Ident
    args: list[Expr]


@dataclass(slots=True, kw_only=True, eq=False)
class Unary(Expr):
    op: str
    operand: Expr


@dataclass(slots=True, kw_only=True, eq=False)
class Binary(Expr):
    """Binary operators including ``&&`` and ``||``."""

    op: str
    left: Expr
    right: Expr


@dataclass(slots=True, kw_only=True, eq=False)
class Assign(Expr):
    """``target op value`` with op one of ``= += -= *= /=``.

    ``x++`` / ``--x`` are ``x += 1`` / ``x -= 1``; ``postfix`` marks ``x++`` / ``x--``,
    whose value is the target's old value (SPEC rule 48).
    """

    op: str
    target: Expr
    value: Expr
    postfix: bool = False


@dataclass(slots=True, kw_only=True, eq=False)
class Conditional(Expr):
    """``cond ? then : orelse``."""

    cond: Expr
    then: Expr
    orelse: Expr


@dataclass(slots=True, kw_only=True, eq=False)
class Prop(Node):
    """``key: value`` in an object literal (``quoted`` for ``"key": value``)."""

    key: Ident
    value: Expr
    quoted: bool = False


@dataclass(slots=True, kw_only=True, eq=False)
class Object(Expr):
    props: list[Prop]


@dataclass(slots=True, kw_only=True, eq=False)
class Array(Expr):
    items: list[Expr]


@dataclass(slots=True, kw_only=True, eq=False)
class EventPayload(Expr):
    """``a.b { k: v }``: an event with a payload literal (``handlers`` items, branches)."""

    event: EventName
    payload: Object


@dataclass(slots=True, kw_only=True, eq=False)
class ServiceCall(Expr):
    """``svc arg`` -- ``think { ... }``, ``learn self``. Analysis checks the service name."""

    service: Ident
    arg: Expr


# ------------------------------------------------------------------------ statements


@dataclass(slots=True, kw_only=True, eq=False)
class Stmt(Node):
    """Base of statements."""


@dataclass(slots=True, kw_only=True, eq=False)
class Block(Stmt):
    body: list[Stmt]


@dataclass(slots=True, kw_only=True, eq=False)
class VarDecl(Stmt):
    name: Ident
    type: TypeRef | None = None
    init: Expr | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class ExprStmt(Stmt):
    expr: Expr


@dataclass(slots=True, kw_only=True, eq=False)
class Emit(Stmt):
    """``emit a.b;`` / ``emit a.b { k: v };`` / ``emit a.b expr;`` / ``emit a.b, expr;``."""

    event: EventName
    payload: Expr | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class If(Stmt):
    cond: Expr
    then: Stmt
    orelse: Stmt | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class While(Stmt):
    cond: Expr
    body: Stmt


@dataclass(slots=True, kw_only=True, eq=False)
class ForIn(Stmt):
    """``for (var x in iterable) body``."""

    var: Ident
    iterable: Expr
    body: Stmt


@dataclass(slots=True, kw_only=True, eq=False)
class ForC(Stmt):
    """C-style ``for (init; cond; update) body`` (each part optional)."""

    init: Stmt | None
    cond: Expr | None
    update: Expr | None
    body: Stmt


@dataclass(slots=True, kw_only=True, eq=False)
class Break(Stmt):
    pass


@dataclass(slots=True, kw_only=True, eq=False)
class Continue(Stmt):
    pass


@dataclass(slots=True, kw_only=True, eq=False)
class Return(Stmt):
    value: Expr | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Empty(Stmt):
    """A lone ``;``."""


# ---------------------------------------------------------------------- declarations


@dataclass(slots=True, kw_only=True, eq=False)
class OnHandler(Stmt):
    """``on [async] a.b (event) { ... }`` at top level or in an entity."""

    event: EventName
    param: Param | None
    body: Block
    is_async: bool = False
    doc: str | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Realize(Node):
    """An entity's ``realize(params) { ... }`` constructor."""

    params: list[Param]
    body: Block


@dataclass(slots=True, kw_only=True, eq=False)
class EntityDecl(Stmt):
    """``conscious Name [: Base] { ... }`` or ``object Name [extends Base] { ... }``."""

    kind: str
    name: Ident
    base: Ident | None
    realize: Realize | None
    handlers: list[OnHandler]
    doc: str | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Program(Node):
    """A whole CX source file: declarations and top-level statements in order."""

    body: list[Stmt]


Literal: TypeAlias = Number | String | Bool | Null
NodeField: TypeAlias = tuple[str, "Node | list[Node]"]


_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def child_fields(cls: type[Node]) -> tuple[str, ...]:
    """Names of the fields of ``cls`` that may hold nodes or lists of nodes."""
    cached = _CHILD_FIELDS.get(cls)
    if cached is not None:
        return cached
    names = []
    for f in fields(cls):
        words = re.findall(r"[A-Za-z_]+", str(f.type))
        if f.name != "span" and any(w[0].isupper() and w != "None" for w in words):
            names.append(f.name)
    _CHILD_FIELDS[cls] = tuple(names)
    return _CHILD_FIELDS[cls]


def children(node: Node) -> list[tuple[str, Any]]:
    """``(field, child)`` pairs of ``node`` in source order, skipping empty fields."""
    out: list[tuple[str, Any]] = []
    for name in child_fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            out.append((name, value))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Node):
                    out.append((f"{name}[{i}]", item))
    return out
