"""Pass `resolve`: scopes, name classification and statement placement (SPEC §3, rule 27).

Fills ``comp.info.names``, ``bindings``, ``globals``, ``function_locals`` and
``handlers``. Scopes nest as top level → entity → realize/handler → blocks; top-level
``var``s are globals visible everywhere; other ``var``s are block-scoped.

A dotted name whose root is unbound is an event reference (rule 16): legal as a
``handlers`` item or a parallel handler parameter (the direct value of a prop of a
service-call literal); used as a callee it is a warning (``Date.now()``, CX205); as any
other value an error (CX202).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxpar import lang
from cxpar.analysis.model import Binding, HandlerInfo, NameKind, NameRef, ProgramInfo
from cxpar.ast import nodes as n
from cxpar.diagnostics.habits import reserved_near_miss
from cxpar.diagnostics.model import Diagnostic, Label, error
from cxpar.diagnostics.suggest import suggest
from cxpar.span import Span

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

#: Other languages' print functions (CX205 says `print(...)`).
_PRINTS = frozenset({"console.log", "console.error", "console.info", "console.warn",
                     "Console.WriteLine", "Console.Write", "System.out.println",
                     "System.out.print", "fmt.Println", "fmt.Printf"})

class Scope:
    """One lexical block: names declared directly in it."""

    __slots__ = ("parent", "vars")

    def __init__(self, parent: Scope | None) -> None:
        self.parent = parent
        self.vars: dict[str, Binding] = {}

    def lookup(self, name: str) -> Binding | None:
        s: Scope | None = self
        while s is not None:
            b = s.vars.get(name)
            if b is not None:
                return b
            s = s.parent
        return None


def event_chain(node: n.Expr) -> tuple[n.Name, list[str]] | None:
    """``(root Name, parts)`` if ``node`` is a Member chain (or Name) rooted at a Name."""
    parts: list[str] = []
    cur: n.Expr = node
    while isinstance(cur, n.Member):
        parts.append(cur.name.name)
        cur = cur.obj
    if not isinstance(cur, n.Name):
        return None
    parts.append(cur.id)
    parts.reverse()
    return cur, parts


def chain_nodes(node: n.Expr) -> list[n.Expr]:
    """Every Member of a chain and its root (outermost first)."""
    out: list[n.Expr] = []
    cur: n.Expr = node
    while isinstance(cur, n.Member):
        out.append(cur)
        cur = cur.obj
    out.append(cur)
    return out


class Resolver:
    """Walks the program with a scope chain and classifies every name."""

    def __init__(self, comp: Compilation) -> None:
        self.comp = comp
        self.info: ProgramInfo = comp.info
        self.diags: list[Diagnostic] = comp.diagnostics
        self.entities: dict[str, n.EntityDecl] = {}
        self.scope = Scope(None)
        self.function: n.Node = comp.program
        self.entity: n.EntityDecl | None = None
        self.loops = 0
        self.counters: dict[int, dict[str, int]] = {}
        #: The event parameter's name in the handler being resolved (None elsewhere).
        self.event_param: str | None = None

    # ----------------------------------------------------------------- helpers

    def note(self, node: n.Node, ref: NameRef) -> None:
        self.info.names[id(node)] = ref

    def unique(self, name: str) -> str:
        counts = self.counters.get(id(self.function))
        if counts is None:  # locals never take a global's name (codegen may need both)
            counts = self.counters[id(self.function)] = dict.fromkeys(self.info.globals, 1)
        k = counts.get(name, 0)
        counts[name] = k + 1
        return name if k == 0 else f"{name}_{k}"

    def declare(self, name: n.Ident, kind: NameKind, decl: n.Node) -> Binding:
        if name.name == "self" and self.entity is not None and kind is not NameKind.PARAM:
            self.diags.append(error(
                "CX211", "`self` cannot be declared inside an entity", name.span,
                label="`self` is the instance here",
                help="pick another name; inside `conscious`/`object` declarations `self` "
                     "(and `this`) always mean the instance"))
        prev = self.scope.vars.get(name.name)
        if prev is not None:
            what = "parameter" if prev.kind is NameKind.PARAM else "variable"
            self.diags.append(error(
                "CX203", f"`{name.name}` is already declared in this block", name.span,
                label="declared again here",
                labels=(Label(prev.span, f"first declared here as a {what}"),),
                help="use assignment (`x = ...`) or pick another name"))
        b = Binding(name.name, kind, decl, name.span, self.unique(name.name), self.function)
        self.scope.vars[name.name] = b
        self.info.bindings[id(decl)] = b
        self.info.function_locals.setdefault(id(self.function), []).append(b)
        return b

    def visible(self) -> list[str]:
        """Every name in scope: values, entities, builtins (and `this` in an entity)."""
        out = self.values_visible() + list(self.entities) + list(lang.BUILTINS)
        if self.entity is not None:
            out.append("this")
        return out

    def lookup(self, name: str) -> NameRef | None:
        """The classification of a bare identifier, or None if unbound."""
        b = self.scope.lookup(name)
        if b is not None:
            return NameRef(b.kind, b, name)
        if name == "self" and self.entity is not None:
            return NameRef(NameKind.SELF, None, name)
        g = self.info.globals.get(name)
        if g is not None:
            return NameRef(NameKind.GLOBAL, g, name)
        if name in self.entities:
            return NameRef(NameKind.ENTITY, None, name)
        if name in lang.BUILTINS:
            return NameRef(NameKind.BUILTIN, None, name)
        return None

    def is_event_chain(self, node: n.Expr) -> tuple[n.Name, list[str]] | None:
        """A dotted chain (two or more parts) whose root is unbound."""
        ch = event_chain(node)
        if ch is None or len(ch[1]) < 2:
            return None
        root = ch[0]
        if root.id == "self" and self.entity is None:
            return None  # reported as `self` outside an entity
        if self.lookup(root.id) is not None:
            return None
        return ch

    def mark_event(self, node: n.Expr, dotted: str) -> None:
        for c in chain_nodes(node):
            self.note(c, NameRef(NameKind.EVENT, None, dotted))

    def unknown(self, node: n.Name, what: str = "name") -> None:
        self.note(node, NameRef(NameKind.UNKNOWN, None, node.id))
        if node.id in ("self", "this"):
            self.self_outside(node.span, node.id)
            return
        if self.event_misnamed(node.span, node.id, node.id):
            return
        hint = suggest(node.id, self.visible())
        self.diags.append(error(
            "CX201", f"unknown {what} `{node.id}`", node.span,
            label="not declared" if what == "name" else "not a builtin or declared function",
            help=f"did you mean `{hint}`?" if hint else
            (f"declare it first: `var {node.id} = ...;`" if what == "name" else
             f"builtins are {', '.join('`' + b + '`' for b in lang.BUILTINS)}")))

    def self_outside(self, span: Span, word: str) -> None:
        self.diags.append(error(
            "CX206", f"`{word}` outside an entity", span,
            label="only valid inside `conscious`/`object` declarations",
            help="move this code into an entity's handler or `realize`"))

    # -------------------------------------------------------------- statements

    def run(self) -> None:
        prog = self.comp.program
        for stmt in prog.body:
            if isinstance(stmt, n.EntityDecl):
                self.entities.setdefault(stmt.name.name, stmt)
        for stmt in prog.body:
            if isinstance(stmt, n.VarDecl):
                prev = self.info.globals.get(stmt.name.name)
                if prev is not None:
                    self.diags.append(error(
                        "CX203", f"`{stmt.name.name}` is already declared in this block",
                        stmt.name.span, label="declared again here",
                        labels=(Label(prev.span, "first declared here"),),
                        help="use assignment (`x = ...`) or pick another name"))
                    continue
                b = Binding(stmt.name.name, NameKind.GLOBAL, stmt, stmt.name.span,
                            stmt.name.name, prog)
                self.info.globals[b.name] = b
                self.info.bindings[id(stmt)] = b
                self.info.function_locals.setdefault(id(prog), []).append(b)
        for stmt in prog.body:
            if isinstance(stmt, n.VarDecl):
                if stmt.init is not None:
                    self.expr(stmt.init)
                continue
            self.stmt(stmt)

    def block(self, body: list[n.Stmt]) -> None:
        saved = self.scope
        self.scope = Scope(saved)
        try:
            for s in body:
                self.stmt(s)
        finally:
            self.scope = saved

    def sub(self, stmt: n.Stmt) -> None:
        """A statement in its own scope (if/while/for bodies)."""
        if isinstance(stmt, n.Block):
            self.block(stmt.body)
        else:
            self.block([stmt])

    def stmt(self, s: n.Stmt) -> None:  # noqa: C901 - one dispatch
        if isinstance(s, n.VarDecl):
            if s.init is not None:
                self.expr(s.init)
            self.declare(s.name, NameKind.LOCAL, s)
        elif isinstance(s, n.ExprStmt):
            self.expr(s.expr)
        elif isinstance(s, n.Block):
            self.block(s.body)
        elif isinstance(s, n.Emit):
            if s.payload is not None:
                self.expr(s.payload)
        elif isinstance(s, n.If):
            self.expr(s.cond)
            self.sub(s.then)
            if s.orelse is not None:
                self.sub(s.orelse)
        elif isinstance(s, n.While):
            self.expr(s.cond)
            self.loops += 1
            self.sub(s.body)
            self.loops -= 1
        elif isinstance(s, n.ForIn):
            self.expr(s.iterable)
            saved = self.scope
            self.scope = Scope(saved)
            self.declare(s.var, NameKind.LOCAL, s)
            self.loops += 1
            try:
                self.sub(s.body)
            finally:
                self.loops -= 1
                self.scope = saved
        elif isinstance(s, n.ForC):
            saved = self.scope
            self.scope = Scope(saved)
            try:
                if s.init is not None:
                    self.stmt(s.init)
                if s.cond is not None:
                    self.expr(s.cond)
                if s.update is not None:
                    self.expr(s.update)
                self.loops += 1
                try:
                    self.sub(s.body)
                finally:
                    self.loops -= 1
            finally:
                self.scope = saved
        elif isinstance(s, (n.Break, n.Continue)):
            if self.loops == 0:
                word = "break" if isinstance(s, n.Break) else "continue"
                self.diags.append(error(
                    "CX208", f"`{word}` outside a loop", s.span,
                    label=f"no enclosing `while` or `for` for this `{word}`",
                    help="use it inside a loop body, or `return` to leave a handler"))
        elif isinstance(s, n.Return):
            if self.function is self.comp.program:
                self.diags.append(error(
                    "CX207", "`return` at the top level", s.span,
                    label="not inside a handler or `realize`",
                    help="`return` gives a handler's result; at the top level, remove it"))
            if s.value is not None:
                self.expr(s.value)
        elif isinstance(s, n.OnHandler):
            self.handler(s)
        elif isinstance(s, n.EntityDecl):
            self.entity_decl(s)

    def function_body(self, fn: n.Node, params: list[tuple[n.Ident, n.Node]],
                      body: n.Block) -> list[Binding]:
        saved = (self.scope, self.function, self.loops)
        self.function = fn
        self.loops = 0
        self.scope = Scope(saved[0])
        out = [self.declare(name, NameKind.PARAM, decl) for name, decl in params]
        try:
            self.block(body.body)
        finally:
            self.scope, self.function, self.loops = saved
        return out

    def handler(self, h: n.OnHandler) -> None:
        if h.param is not None:
            params: list[tuple[n.Ident, n.Node]] = [(h.param.name, h.param)]
        else:  # `on a.b { ... }`: `event` is bound implicitly
            params = [(n.Ident(span=h.event.span, name="event"), h)]
        saved_param, self.event_param = self.event_param, params[0][0].name
        try:
            bound = self.function_body(h, params, h.body)
        finally:
            self.event_param = saved_param
        doc = h.doc or ""
        self.info.handlers.append(HandlerInfo(
            node=h, event=h.event.dotted,
            entity=self.entity.name.name if self.entity is not None else None,
            param=bound[0] if bound else None, external="@external" in doc))
        self.info.handled.add(h.event.dotted)

    def entity_decl(self, e: n.EntityDecl) -> None:
        saved = self.entity
        self.entity = e
        try:
            if e.realize is not None:
                self.function_body(e.realize, [(p.name, p) for p in e.realize.params],
                                   e.realize.body)
            for h in e.handlers:
                self.handler(h)
        finally:
            self.entity = saved

    # ------------------------------------------------------------- expressions

    def expr(self, e: n.Expr, *, callee: bool = False) -> None:  # noqa: C901 - dispatch
        if isinstance(e, n.Name):
            ref = self.lookup(e.id)
            if ref is None:
                self.unknown(e, "function" if callee else "name")
            else:
                self.note(e, ref)
        elif isinstance(e, n.This):
            if self.entity is None:
                self.self_outside(e.span, "this")
                self.note(e, NameRef(NameKind.UNKNOWN, None, "this"))
            else:
                self.note(e, NameRef(NameKind.SELF, None, "this"))
        elif isinstance(e, n.Member):
            self.member(e, callee=callee)
        elif isinstance(e, n.Call):
            self.expr(e.func, callee=True)
            for a in e.args:
                self.expr(a)
            self.builtin_arity(e)
        elif isinstance(e, n.Index):
            self.expr(e.obj)
            self.expr(e.index)
        elif isinstance(e, n.New):
            for a in e.args:
                self.expr(a)
        elif isinstance(e, n.Unary):
            self.expr(e.operand)
        elif isinstance(e, n.Binary):
            self.expr(e.left)
            self.expr(e.right)
        elif isinstance(e, n.Conditional):
            self.expr(e.cond)
            self.expr(e.then)
            self.expr(e.orelse)
        elif isinstance(e, n.Assign):
            self.target(e.target)
            self.expr(e.value)
        elif isinstance(e, n.Object):
            for p in e.props:
                if p.key.name == "handlers" and isinstance(p.value, n.Array):
                    self.handler_items(p.value)
                else:
                    self.expr(p.value)
        elif isinstance(e, n.Array):
            for i in e.items:
                self.expr(i)
        elif isinstance(e, n.EventPayload):
            self.event_as_value(e, e.event.dotted, None)
            self.expr(e.payload)
        elif isinstance(e, n.ServiceCall):
            self.service_call(e)
        else:  # literals, `cond ? a : b`, and any other expression: resolve what it holds
            for _, child in n.children(e):
                if isinstance(child, n.Expr):
                    self.expr(child)

    def builtin_arity(self, call: n.Call) -> None:
        """CX212: a builtin called with the wrong number of arguments."""
        func = call.func
        if not isinstance(func, n.Name):
            return
        ref = self.info.names.get(id(func))
        if ref is None or ref.kind is not NameKind.BUILTIN:
            return
        want = lang.BUILTIN_ARITY.get(func.id)
        got = len(call.args)
        if want is None or got == want:
            return
        what = f"{want} argument{'s' if want != 1 else ''}" if want else "no arguments"
        span = call.args[want].span.to(call.args[-1].span) if got > want else call.span
        usage = lang.BUILTIN_USAGE[func.id]
        self.diags.append(error(
            "CX212", f"`{func.id}` takes {what}, got {got}", span,
            label="extra argument" + ("s" if got - want > 1 else "") if got > want
            else "missing argument" + ("s" if want - got > 1 else ""),
            help=f"call it as `{usage}`"))

    def member(self, e: n.Member, *, callee: bool) -> None:
        ch = self.is_event_chain(e)
        if ch is None:
            root = event_chain(e)
            b = None
            if root is not None:
                r = self.lookup(root[0].id)
                b = r.binding if r is not None else None
            self.note(e, NameRef(NameKind.PROPERTY, b, e.name.name))
            self.expr(e.obj)
            return
        dotted = ".".join(ch[1])
        self.mark_event(e, dotted)
        if callee:
            hint = "use `now()`" if dotted in ("Date.now", "DateTime.now", "DateTime.Now") \
                else "use `print(...)`" if dotted in _PRINTS \
                else "CX calls only its builtins " \
                f"({', '.join('`' + b + '`' for b in lang.BUILTINS)})"
            self.diags.append(error(
                "CX205", f"unknown function `{dotted}`", e.span,
                label=f"`{ch[0].id}` is not declared, so this call can only fail",
                help=f"{hint}; CX has no host functions or methods"))
        else:
            self.event_as_value(e, dotted, ch[0])

    def event_misnamed(self, span: Span, root: str, written: str) -> bool:
        """CX210: ``event`` (or ``e``, ``payload`` ...: ``lang.EVENT_NAMES``) undeclared in
        a handler whose event has another name."""
        param = self.event_param
        if root not in lang.EVENT_NAMES or param is None or param == root:
            return False
        fixed = param + written[len(root):]
        self.diags.append(error(
            "CX210", f"`{root}` is not defined in this handler; its event is `{param}`", span,
            label=f"did you mean `{fixed}`?",
            help=f"write `{fixed}`, or name the handler's parameter `{root}`: "
                 f"`on a.b ({root}) {{ ... }}`"))
        return True

    def values_visible(self) -> list[str]:
        """Names that can have properties: variables, parameters, globals, `self`."""
        out: list[str] = []
        sc: Scope | None = self.scope
        while sc is not None:
            out.extend(sc.vars)
            sc = sc.parent
        out += list(self.info.globals)
        if self.entity is not None:
            out += ["self"]
        return out

    def event_as_value(self, e: n.Expr, dotted: str, root: n.Name | None) -> None:
        if root is not None and self.event_misnamed(e.span, root.id, dotted):
            return
        # A property read's root is a value: never suggest a builtin or an entity (`user`
        # is not `str`).
        hint = suggest(root.id, self.values_visible()) if root is not None else None
        self.diags.append(error(
            "CX202", f"event reference `{dotted}` used as a value", e.span,
            label="an event name, not a value",
            help=(f"`{root.id}` is not declared; did you mean `{hint}`?" if hint and root
                  else f"`{root.id}` is not declared, so `{dotted}` names an event; declare "
                       f"`{root.id}` (`var {root.id} = ...;`) to read its property" if root
                  else "event names can only be `emit`/`on` targets, `handlers` items or "
                       "parallel handler parameters (`key: a.b` in a service call)")))

    def target(self, t: n.Expr) -> None:
        if isinstance(t, n.Name):
            ref = self.lookup(t.id)
            if ref is None:
                self.note(t, NameRef(NameKind.UNKNOWN, None, t.id))
                if t.id in ("self", "this"):
                    self.self_outside(t.span, t.id)
                    return
                hint = suggest(t.id, self.visible())
                self.diags.append(error(
                    "CX204", f"assignment to undeclared name `{t.id}`", t.span,
                    label="not declared",
                    help=f"did you mean `{hint}`?" if hint else
                    f"declare it first: `var {t.id} = ...;`"))
                return
            self.note(t, ref)
            if ref.kind in (NameKind.ENTITY, NameKind.BUILTIN, NameKind.SELF):
                self.not_assignable(t, f"`{t.id}` is {'an entity' if ref.kind is NameKind.ENTITY else 'a builtin' if ref.kind is NameKind.BUILTIN else 'the instance'}")
        elif isinstance(t, n.Member):
            ch = self.is_event_chain(t)
            if ch is not None:
                dotted = ".".join(ch[1])
                self.mark_event(t, dotted)
                self.not_assignable(t, f"`{dotted}` is an event name (`{ch[0].id}` is not declared)")
                return
            self.expr(t)
        elif isinstance(t, n.Index):
            self.expr(t)
        else:
            self.expr(t)
            self.not_assignable(t, "only variables, properties and indexes can be assigned")

    def not_assignable(self, t: n.Expr, why: str) -> None:
        self.diags.append(error("CX209", "cannot assign to this expression", t.span,
                                label=why, help="assign to a variable, `obj.prop` or `arr[i]`"))

    def handler_items(self, arr: n.Array) -> None:
        """A ``handlers: [...]`` array: dotted names in it are always events (rule 16)."""
        for item in arr.items:
            if isinstance(item, n.EventPayload):
                self.expr(item.payload)
            elif (ch := event_chain(item)) is not None:
                self.mark_event(item, ".".join(ch[1]))
            else:
                self.expr(item)

    def tool_items(self, arr: n.Array) -> None:
        """A ``tools: [...]`` array: dotted names (and each object's ``event``) are events."""
        for item in arr.items:
            if isinstance(item, n.Object):
                for p in item.props:
                    if p.key.name == "event" and (ch := event_chain(p.value)) is not None \
                            and not isinstance(p.value, n.EventPayload):
                        self.mark_event(p.value, ".".join(ch[1]))
                    else:
                        self.expr(p.value)
            elif (ch := event_chain(item)) is not None and not isinstance(item, n.EventPayload):
                self.mark_event(item, ".".join(ch[1]))
            else:
                self.expr(item)

    def service_call(self, call: n.ServiceCall) -> None:
        arg = call.arg
        if call.service.name == "emit" and (ch := self.is_event_chain(arg)) is not None:
            self.mark_event(arg, ".".join(ch[1]))  # `var r = emit a.b;`: CX118 from `services`
            return
        if not isinstance(arg, n.Object):
            self.expr(arg)
            return
        for p in arg.props:
            v = p.value
            if p.key.name in ("handlers", "tools") and not isinstance(v, n.Array) and \
                    (ch := self.is_event_chain(v)) is not None:
                self.mark_event(v, ".".join(ch[1]))  # CX302 from `services`
            elif isinstance(v, n.Array) and (p.key.name == "handlers" or
                                             reserved_near_miss(p.key.name) == "handlers"):
                self.handler_items(v)  # `handler: [a.b]` is warned about (CX313)
            elif isinstance(v, n.Array) and (p.key.name == "tools" or
                                             reserved_near_miss(p.key.name) == "tools"):
                self.tool_items(v)
            elif p.key.name == "stream" and (ch := self.is_event_chain(v)) is not None:
                self.mark_event(v, ".".join(ch[1]))
            elif isinstance(v, n.EventPayload):
                self.expr(v.payload)
            elif (p.key.name not in lang.RESERVED_PROPS or p.key.name == "fallback") and \
                    (ch := self.is_event_chain(v)) is not None:
                self.mark_event(v, ".".join(ch[1]))
            else:
                self.expr(v)


def run(comp: Compilation) -> None:
    """Resolve every name of ``comp.program`` into ``comp.info``."""
    Resolver(comp).run()
