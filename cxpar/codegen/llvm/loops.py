"""Loop lifting, part 1: which ``while`` / C-style ``for`` loops can run as native code.

numba's loop lifting, for CX: a loop whose every variable is a number or a boolean, and
whose body only computes with them, is compiled to one LLVM function (:mod:`.loop_ir`)
that the generated Python calls once per loop instead of interpreting every iteration.
CX has one number type (IEEE double) and booleans, so the machine types are ``double``
and ``i1``.

A loop is **eligible** when its condition, body and update use only

- number and boolean literals, variables (locals, globals, parameters),
- arithmetic ``+ - * / %``, unary ``- + !``, comparisons ``< <= > >= == !=``,
  ``&&``/``||``, ``?:``, assignments ``= += -= *= /= %=`` to variables,
  ``x++``/``x--``/``++x``/``--x``, and the pure numeric builtin ``num(x)`` of a number;
- ``var x = e;``, expression statements, ``if``/``else``, blocks, nested ``while`` and
  C-style ``for`` loops, ``break`` and ``continue``;

and the variables can be given one type each (number or boolean) consistently: a
variable assigned both kinds of value, a boolean in arithmetic, or an ``&&`` whose value
(not just its truth) may be either kind makes the loop ineligible. Anything else (a
call, a property, a string, ``null``, a service call, ``emit``, ``return``, ``for … in``)
is a reason with a span; :class:`Loop` keeps the first one.

Types are a compile-time guess for the variables the loop never assigns; at run time
the generated Python checks, on entry, that every variable the loop uses really has its
type (``type(v) is float`` / ``is bool``) and otherwise runs the Python loop, so a wrong
guess costs speed, never behaviour. Only the outermost eligible loop of a nest is lifted;
the loops inside it are part of its native function.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from cxpar.analysis.model import Binding, NameKind, ProgramInfo
from cxpar.ast import nodes as n
from cxpar.span import Span

__all__ = ["NUM", "BOOL", "LoopVar", "Loop", "LoopPlan", "plan_loops", "NotLiftable"]

NUM = "number"
BOOL = "boolean"
#: An ``&&``/``||``/``?:`` whose value may be either kind: fine where only its truth counts.
MIXED = "mixed"

ARITH = ("+", "-", "*", "/", "%")
ORDER = ("<", "<=", ">", ">=")
EQUALITY = ("==", "!=")
LOGIC = ("&&", "||")
ASSIGN_OPS = ("=", "+=", "-=", "*=", "/=", "%=")

LoopNode = n.While | n.ForC


class NotLiftable(Exception):
    """Why a loop cannot be native (message and the span of the construct)."""

    def __init__(self, reason: str, span: Span) -> None:
        super().__init__(reason)
        self.reason = reason
        self.span = span


@dataclass(eq=False)
class LoopVar:
    """One variable of a lifted loop."""

    binding: Binding
    type: str                 #: NUM or BOOL
    written: bool = False     #: assigned inside the loop (so written back after it)
    outer: bool = True        #: declared outside the loop (an entry value)

    @property
    def name(self) -> str:
        return self.binding.name


@dataclass(eq=False)
class Loop:
    """One ``while`` / C-style ``for`` of the program and the lifting verdict."""

    node: LoopNode
    index: int                        #: position among all loops, source order
    function: str                     #: "top level", "on a.b", "Agent: realize"
    lifted: bool = False              #: compiled to its own native function
    reason: str | None = None         #: why not (the first reason)
    reason_span: Span | None = None
    inside: Loop | None = None        #: the lifted loop this one is compiled within
    #: Variables in first-use order: entry values (``outer``) first, then the loop's own.
    vars: list[LoopVar] = field(default_factory=list)

    @property
    def span(self) -> Span:
        return self.node.span

    @property
    def kind(self) -> str:
        return "while" if isinstance(self.node, n.While) else "for"

    @property
    def symbol(self) -> str:
        """The native function's name (the Python-callable wrapper adds ``_py``)."""
        return f"cx_loop_{self.index}"

    @property
    def params(self) -> list[LoopVar]:
        """Entry values, in argument order."""
        return [v for v in self.vars if v.outer]

    @property
    def state(self) -> list[LoopVar]:
        """What the native function takes and returns besides the resume point: every
        entry value, then the loop's own variables (kept across returns to Python)."""
        return [v for v in self.vars if v.outer] + [v for v in self.vars if not v.outer]

    def describe(self) -> str:
        """One line for ``--explain`` and the IR comments."""
        where = f"{self.kind} loop at {self.span} ({self.function})"
        if self.lifted:
            names = ", ".join(f"{v.name}: {v.type}" for v in self.params) or "no variables"
            return f"{where}: lifted to native code ({names})"
        if self.inside is not None:
            return f"{where}: native, inside the lifted loop at line {self.inside.span.line}"
        return f"{where}: not lifted: {self.reason} (at {self.reason_span})"


@dataclass
class LoopPlan:
    """Every loop of a program with its verdict; what the code generators consult."""

    loops: list[Loop] = field(default_factory=list)
    _by_node: dict[int, Loop] = field(default_factory=dict, repr=False)

    def lifted(self, node: n.Node) -> Loop | None:
        """The lifted loop for ``node`` (an outermost eligible loop), else None."""
        loop = self._by_node.get(id(node))
        return loop if loop is not None and loop.lifted else None

    @property
    def lifted_loops(self) -> list[Loop]:
        return [lp for lp in self.loops if lp.lifted]

    def report(self) -> list[str]:
        """One line per loop in source order (``--explain``)."""
        ordered = sorted(self.loops, key=lambda lp: (lp.span.line, lp.span.col))
        return [lp.describe() for lp in ordered]


# ---------------------------------------------------------------------------- finding


def _functions(program: n.Program) -> Iterator[tuple[str, list[n.Stmt]]]:
    """``(label, statements)`` of the top level, every handler and every realize."""
    top = [s for s in program.body if not isinstance(s, (n.OnHandler, n.EntityDecl))]
    yield "top level", top
    for s in program.body:
        if isinstance(s, n.OnHandler):
            yield f"on {s.event.dotted}", s.body.body
        elif isinstance(s, n.EntityDecl):
            for h in s.handlers:
                yield f"{s.name.name}: on {h.event.dotted}", h.body.body
            if s.realize is not None:
                yield f"{s.name.name}: realize", s.realize.body.body


def _loops_in(stmts: list[n.Stmt]) -> Iterator[LoopNode]:
    """Every ``while``/C-style ``for`` in ``stmts``, outer before inner, source order."""
    stack: list[n.Node] = list(reversed(stmts))
    while stack:
        node = stack.pop()
        if isinstance(node, (n.While, n.ForC)):
            yield node
        if isinstance(node, (n.OnHandler, n.EntityDecl, n.Expr)):
            continue
        kids = [v for _, v in n.children(node)]
        stack.extend(reversed(kids))


def plan_loops(program: n.Program, info: ProgramInfo) -> LoopPlan:
    """Find every loop and decide which are lifted."""
    plan = LoopPlan()
    for label, stmts in _functions(program):
        for node in _loops_in(stmts):
            loop = Loop(node, len(plan.loops), label)
            plan.loops.append(loop)
            plan._by_node[id(node)] = loop
    for loop in plan.loops:
        if loop.inside is not None:
            continue
        try:
            loop.vars = _Checker(info, loop.node).run()
        except NotLiftable as why:
            loop.reason, loop.reason_span = why.reason, why.span
            continue
        loop.lifted = True
        for inner in _loops_in([loop.node.body]):
            plan._by_node[id(inner)].inside = loop
    return plan


# ---------------------------------------------------------------------------- checking


def _declared_type(b: Binding) -> str:
    """The kind of value a variable's declaration gives it, by its syntax."""
    init = b.decl.init if isinstance(b.decl, n.VarDecl) else None
    while isinstance(init, n.Assign) and init.op == "=":
        init = init.value
    if isinstance(init, n.Bool) or (isinstance(init, n.Unary) and init.op == "!") or (
            isinstance(init, n.Binary) and init.op in ORDER + EQUALITY):
        return BOOL
    return NUM


class _Checker:
    """Structure and types of one loop; raises :class:`NotLiftable` on the first problem."""

    def __init__(self, info: ProgramInfo, node: LoopNode) -> None:
        self.info = info
        self.node = node
        self.types: dict[int, str] = {}         #: id(binding) -> NUM/BOOL
        self.order: list[Binding] = []          #: first use order
        self.written: set[int] = set()
        self.declared: set[int] = set()         #: declared inside the loop
        self.changed = False
        self.final = False

    # -- driver

    def run(self) -> list[LoopVar]:
        self.structure()
        for _ in range(64):
            self.changed = False
            self.loop_stmt(self.node)
            if not self.changed:
                break
        for b in self.order:
            # Never constrained (only tested for truth, compared, copied): guess from its
            # declaration (`var done = false;`), else a number; the entry check catches a
            # wrong guess.
            if id(b) not in self.types:
                self.types[id(b)] = _declared_type(b)
                self.loop_stmt(self.node)  # propagate (`x = flag`) before the next guess
        self.final = True
        self.loop_stmt(self.node)
        return [LoopVar(b, self.types[id(b)], id(b) in self.written,
                        id(b) not in self.declared) for b in self.order]

    def structure(self) -> None:
        """The first construct that native code cannot run, in source order."""
        stack: list[n.Node] = [self.node]
        while stack:
            node = stack.pop()
            self.allowed(node)
            if isinstance(node, n.Call):  # num(x): the callee is the builtin
                stack.extend(reversed(node.args))
                continue
            stack.extend(reversed([v for _, v in n.children(node)]))

    def allowed(self, node: n.Node) -> None:  # noqa: C901 - one table
        span = node.span
        if isinstance(node, (n.While, n.ForC, n.Block, n.ExprStmt, n.If, n.Break,
                             n.Continue, n.Empty, n.Number, n.Bool, n.Conditional,
                             n.Ident)):
            return
        if isinstance(node, n.VarDecl):
            if node.init is None:
                raise NotLiftable(f"`var {node.name.name};` starts as null", span)
            return
        if isinstance(node, n.Name):
            ref = self.info.ref(node)
            if ref is None or ref.binding is None or ref.kind not in (
                    NameKind.LOCAL, NameKind.GLOBAL, NameKind.PARAM):
                what = ref.kind.value if ref is not None else "unresolved"
                raise NotLiftable(f"`{node.id}` is not a variable ({what})", span)
            return
        if isinstance(node, n.Unary):
            if node.op not in ("-", "+", "!"):
                raise NotLiftable(f"operator `{node.op}`", span)
            return
        if isinstance(node, n.Binary):
            if node.op not in ARITH + ORDER + EQUALITY + LOGIC:
                raise NotLiftable(f"operator `{node.op}`", span)
            return
        if isinstance(node, n.Assign):
            if not isinstance(node.target, n.Name):
                raise NotLiftable("assignment to a property or index", node.target.span)
            if node.op not in ASSIGN_OPS:
                raise NotLiftable(f"operator `{node.op}`", span)
            return
        if isinstance(node, n.Call):
            if self.is_num_call(node):
                return
            name = node.func.id if isinstance(node.func, n.Name) else "a function"
            raise NotLiftable(f"a call to `{name}`", span)
        reasons = {
            n.String: "a string", n.Null: "`null`", n.Member: "a property access",
            n.Index: "an index", n.New: "`new`", n.ServiceCall: "a service call",
            n.Object: "an object literal", n.Array: "an array literal",
            n.Emit: "`emit`", n.Return: "`return`", n.ForIn: "a `for … in` loop",
            n.This: "`this`", n.EventPayload: "an event",
        }
        for cls, text in reasons.items():
            if isinstance(node, cls):
                if isinstance(node, n.ServiceCall):
                    text = f"a service call (`{node.service.name}`)"
                raise NotLiftable(text, span)
        raise NotLiftable(f"`{type(node).__name__}` is not supported in native loops", span)

    def is_num_call(self, node: n.Call) -> bool:
        if not isinstance(node.func, n.Name) or len(node.args) != 1:
            return False
        ref = self.info.ref(node.func)
        return ref is not None and ref.kind is NameKind.BUILTIN and node.func.id == "num"

    # -- variables

    def binding(self, name: n.Name) -> Binding:
        ref = self.info.ref(name)
        assert ref is not None and ref.binding is not None
        b = ref.binding
        if all(x is not b for x in self.order):
            self.order.append(b)
        return b

    def merge(self, b: Binding, t: str | None, span: Span, why: str) -> None:
        """Record that ``b`` holds values of type ``t``."""
        if t is None:
            return
        if t == MIXED:
            raise NotLiftable(f"`{b.name}` may get a number or a boolean here", span)
        old = self.types.get(id(b))
        if old is None:
            self.types[id(b)] = t
            self.changed = True
        elif old != t:
            raise NotLiftable(f"`{b.name}` {why} but holds a {old} elsewhere", span)

    def require(self, e: n.Expr, t: str | None, want: str, what: str) -> None:
        """An operand that must be of type ``want`` (arithmetic: number)."""
        if isinstance(e, n.Name):
            self.merge(self.binding(e), want, e.span, f"is used as a {want}")
            return
        if t is not None and t != want:
            raise NotLiftable(f"{what} of a {t}" if t != MIXED else
                              f"{what} of a value that may be a number or a boolean", e.span)

    # -- statements

    def loop_stmt(self, s: LoopNode) -> None:
        if isinstance(s, n.ForC):
            if s.init is not None:
                self.stmt(s.init)
            if s.cond is not None:
                self.truth(s.cond)
            if s.update is not None:
                self.expr(s.update)
        else:
            self.truth(s.cond)
        self.stmt(s.body)

    def stmt(self, s: n.Stmt) -> None:
        if isinstance(s, n.Block):
            for x in s.body:
                self.stmt(x)
        elif isinstance(s, n.VarDecl):
            b = self.info.binding_of(s)
            assert b is not None and s.init is not None
            t = self.expr(s.init)
            if all(x is not b for x in self.order):
                self.order.append(b)
            if s is not getattr(self.node, "init", None):
                self.declared.add(id(b))
            self.written.add(id(b))
            self.merge(b, t, s.span, f"is declared as a {t}")
        elif isinstance(s, n.ExprStmt):
            self.expr(s.expr, value=False)
        elif isinstance(s, n.If):
            self.truth(s.cond)
            self.stmt(s.then)
            if s.orelse is not None:
                self.stmt(s.orelse)
        elif isinstance(s, (n.While, n.ForC)):
            self.loop_stmt(s)

    # -- expressions

    def truth(self, e: n.Expr) -> None:
        self.expr(e, value=False)

    def expr(self, e: n.Expr, value: bool = True) -> str | None:  # noqa: C901 - dispatch
        """The type of ``e`` (None: not known yet); ``value``: its value is used, not
        only its truth."""
        if isinstance(e, n.Number):
            return NUM
        if isinstance(e, n.Bool):
            return BOOL
        if isinstance(e, n.Name):
            return self.types.get(id(self.binding(e)))
        if isinstance(e, n.Unary):
            t = self.expr(e.operand, value=e.op != "!")
            if e.op == "!":
                return BOOL
            self.require(e.operand, t, NUM, f"unary `{e.op}`")
            return NUM
        if isinstance(e, n.Binary):
            return self.binary(e, value)
        if isinstance(e, n.Conditional):
            self.truth(e.cond)
            ta, tb = self.expr(e.then, value), self.expr(e.orelse, value)
            return self.join(ta, tb, e, value, "`?:`")
        if isinstance(e, n.Assign):
            assert isinstance(e.target, n.Name)
            b = self.binding(e.target)
            self.written.add(id(b))
            if e.op == "=":
                t = self.expr(e.value)
                self.merge(b, t, e.span, f"is assigned a {t}")
                return t
            self.merge(b, NUM, e.target.span, f"is used as a number (`{e.op}`)")
            self.require(e.value, self.expr(e.value), NUM, f"`{e.op}`")
            return NUM
        if isinstance(e, n.Call):  # num(x)
            t = self.expr(e.args[0])
            self.require(e.args[0], t, NUM, "`num` (native loops only take numbers)")
            return NUM
        raise NotLiftable(f"`{type(e).__name__}`", e.span)  # excluded by structure()

    def binary(self, e: n.Binary, value: bool) -> str | None:
        op = e.op
        if op in LOGIC:
            a = self.expr(e.left, value)
            b = self.expr(e.right, value)
            return self.join(a, b, e, value, f"`{op}`")
        a, b = self.expr(e.left), self.expr(e.right)
        if op in ARITH or op in ORDER:
            what = f"`{op}`" if op in ORDER else f"arithmetic (`{op}`)"
            self.require(e.left, a, NUM, what)
            self.require(e.right, b, NUM, what)
            return NUM if op in ARITH else BOOL
        for side, t in ((e.left, a), (e.right, b)):
            if t == MIXED:
                raise NotLiftable(f"`{op}` of a number-or-boolean value", side.span)
        return BOOL

    def join(self, a: str | None, b: str | None, e: n.Expr, value: bool,
             what: str) -> str | None:
        if a is None or b is None:
            return a if b is None else b
        if a == b:
            return a
        if value and self.final:
            raise NotLiftable(f"{what} gives a number or a boolean", e.span)
        return MIXED
