"""The python backend: analysed CX AST → Python ``ast.Module`` with CX positions.

Every Python node is built through :meth:`PyGen.at`, which copies the CX span
(hy's ``asty``), so the code object's line table points at CX source. Operations
that can fail at run time get a *span id* (an index into ``__cx_spans__``) and raise
:class:`cxpar.runtime.CxRuntimeError` with it, so errors are reported against CX.

The generated module defines ``__cx_program__(rt)``: it binds the program's globals
as closure variables (one set per run, so streams never share state), defines
handlers and realize functions, registers entities and top-level handlers with the
runtime (hoisting, SPEC §4.2), and returns the top level as ``async def``.
"""

from __future__ import annotations

import ast as py
from typing import Any, TypeVar

from cxpar.analysis.model import AnalysedCall, Binding, NameKind, ProgramInfo
from cxpar.analysis.pipeline import Compilation
from cxpar.ast import nodes as n
from cxpar.ast.visit import walk
from cxpar.codegen.loop_hook import NATIVE_PARAM, native_loop
from cxpar.codegen.names import Mangler
from cxpar.span import SourceFile, Span

T = TypeVar("T", bound=py.AST)

RT = "rt"
SELF = "cx_self"
EXTRA = "_extra"  # a realize's ignored surplus `new` arguments
V = "_v"  # cxpar.runtime.values
S = "_s"  # cxpar.runtime.support

_ARITH = {"+": "add", "-": "sub", "*": "mul", "/": "div", "%": "mod"}
_COMPARE = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


class CodegenError(Exception):
    """A construct the backend cannot compile (analysis should have rejected it)."""

    def __init__(self, message: str, span: Span) -> None:
        super().__init__(message)
        self.span = span


class _Function:
    """Per generated function: which globals it assigns, its loops, its temps."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "top", "handler", "realize"
        self.assigned_globals: set[str] = set()
        self.loops: list[n.Stmt] = []
        self.in_entity = False


class PyGen:
    """Compile one analysed program. Use :func:`generate`."""

    def __init__(self, comp: Compilation, repl: bool = False, loops: Any = None) -> None:
        info = getattr(comp, "info", None)
        if not isinstance(info, ProgramInfo):
            raise CodegenError("program was not analysed", comp.program.span)
        self.info: ProgramInfo = info
        self.source: SourceFile = comp.source
        self.program_node: n.Program = comp.program
        self.lines = comp.source.text.split("\n")
        self.spans: list[tuple[str, int, int, int, int]] = []
        self.span_ids: dict[tuple[str, int, int, int, int], int] = {}
        self.fn = _Function("top")
        self.handler_names: dict[int, str] = {}
        #: Every Python name of the module comes from here (never a clash).
        self.names = Mangler()
        #: REPL mode: globals live in a namespace that persists between entries.
        self.repl = repl
        #: Module-level constants (``_k0 = {...}``): literal requests shared by every call.
        self.constants: list[py.stmt] = []
        #: Handlers that never write to or pass on their event (``__cx_pure_event__``).
        self.read_only_handlers: list[str] = []
        #: ``(function, label)``: the name stats, traces and reports use (``__cx_name__``).
        self.labels: list[tuple[str, str]] = []
        #: ``(async handler, plain function)`` for handlers that never suspend.
        self.sync_handlers: list[tuple[str, str]] = []
        #: Lifted loops (:class:`cxpar.codegen.llvm.backend.LiftedLoops`): each gets a
        #: native path next to its Python one (:mod:`cxpar.codegen.loop_hook`).
        self.loops = loops if loops is not None and loops.codes and not repl else None
        self.loop_fns: dict[int, str] = {}

    # ------------------------------------------------------------------ helpers

    def sid(self, span: Span) -> int:
        """The id of ``span`` in ``__cx_spans__``."""
        key = (span.file, span.line, span.col, span.end_line, span.end_col)
        got = self.span_ids.get(key)
        if got is None:
            got = self.span_ids[key] = len(self.spans)
            self.spans.append(key)
        return got

    def _byte_col(self, line: int, col: int) -> int:
        text = self.lines[line - 1] if 1 <= line <= len(self.lines) else ""
        return len(text[: max(col - 1, 0)].encode("utf-8"))

    def at(self, span: Span, node: T) -> T:
        """Give ``node`` (and its unpositioned children) the CX position ``span``.

        A positioned node's subtree was positioned by the inner ``at`` that positioned
        it, so the walk stops there: linear in the new nodes, not quadratic in the
        nesting (a chain of 1 500 ``+`` took seconds)."""
        lineno, col = span.line, self._byte_col(span.line, span.col)
        end_lineno, end_col = span.end_line, self._byte_col(span.end_line, span.end_col)
        todo: list[py.AST] = [node]
        while todo:
            sub = todo.pop()
            if "lineno" in sub._attributes:
                if getattr(sub, "lineno", None) is not None:
                    continue
                sub.lineno, sub.col_offset = lineno, col  # type: ignore[attr-defined]
                sub.end_lineno, sub.end_col_offset = end_lineno, end_col  # type: ignore[attr-defined]
            todo.extend(py.iter_child_nodes(sub))
        return node

    def name(self, ident: str, store: bool = False) -> py.Name:
        return py.Name(id=ident, ctx=py.Store() if store else py.Load())

    def attr(self, obj: str, name: str) -> py.Attribute:
        return py.Attribute(value=self.name(obj), attr=name, ctx=py.Load())

    def call(self, func: py.expr, *args: py.expr, **kw: py.expr) -> py.Call:
        return py.Call(func=func, args=list(args), keywords=[
            py.keyword(arg=k, value=v) for k, v in kw.items()])

    def helper(self, module: str, fn: str, *args: py.expr) -> py.Call:
        return self.call(self.attr(module, fn), *args)

    def const(self, value: Any) -> py.Constant:
        return py.Constant(value=value)

    def temp(self) -> str:
        return self.names.fresh("_t")

    def fresh(self, base: str) -> str:
        """A new Python name that looks like ``base`` (see :class:`Mangler`)."""
        return self.names.fresh(base)

    # ------------------------------------------------------------------ program

    def module(self) -> py.Module:
        """The whole module: imports, tables and ``__cx_program__``."""
        program_fn = self.program()
        header: list[py.stmt] = [
            py.ImportFrom(module="cxpar.runtime", names=[
                py.alias(name="values", asname=V), py.alias(name="support", asname=S)], level=0),
        ]
        # `program()` ran first, so the span table is complete here.
        tables = [
            py.Assign(targets=[self.name("__cx_file__", True)],
                      value=self.const(self.source.name)),
            py.Assign(targets=[self.name("__cx_spans__", True)], value=py.List(elts=[
                py.Tuple(elts=[self.const(x) for x in sp], ctx=py.Load()) for sp in self.spans
            ], ctx=py.Load())),
        ]
        top = self.at(self.source_span(), py.Module(
            body=header + tables + self.constants + [program_fn], type_ignores=[]))
        return top

    def source_span(self) -> Span:
        return Span(self.source.name, 1, 1, 1, 1)

    def program(self) -> py.FunctionDef:
        info = self.info
        prog = self.program_node
        body: list[py.stmt] = []
        # Globals: closure variables of __cx_program__, null until their `var` runs.
        gnames = [self.global_name(name) for name in info.globals]
        if self.repl:
            body.append(self.at(prog.span, py.Assign(
                targets=[self.name("G", True)],
                value=self.helper(S, "repl_globals", self.name(RT), py.List(
                    elts=[self.const(g) for g in info.globals], ctx=py.Load())))))
        elif gnames:
            body.append(self.at(prog.span, py.Assign(
                targets=[py.Tuple(elts=[self.name(g, True) for g in gnames], ctx=py.Store())]
                if len(gnames) > 1 else [self.name(gnames[0], True)],
                value=py.Tuple(elts=[self.const(None)] * len(gnames), ctx=py.Load())
                if len(gnames) > 1 else self.const(None))))
        if self.loops is not None:
            # The native loops, in lifted order, or None each (the Python loops run).
            names = [self.fresh(f"_L{c.loop.index}") for c in self.loops.codes]
            for c, fname in zip(self.loops.codes, names, strict=True):
                self.loop_fns[id(c.loop.node)] = fname
            nones = py.Tuple(elts=[self.const(None)] * len(names), ctx=py.Load())
            body.append(self.at(prog.span, py.Assign(
                targets=[py.Tuple(elts=[self.name(x, True) for x in names], ctx=py.Store())],
                value=py.IfExp(test=py.Compare(left=self.name(NATIVE_PARAM), ops=[py.Is()],
                                               comparators=[self.const(None)]),
                               body=nones, orelse=self.name(NATIVE_PARAM)))))
        # Handlers and realize functions, then registrations (hoisted).
        registrations: list[py.stmt] = []
        for ent in info.entities.values():
            decl = ent.decl
            for h in decl.handlers:
                body.extend(self.handler(h, entity=decl.name.name))
            realize_name = "None"
            if decl.realize is not None:
                realize_name = self.fresh(f"realize_{decl.name.name}")
                body.append(self.realize(decl.realize, realize_name))
                self.labels.append((realize_name, f"{decl.name.name}: realize"))
            handlers = py.List(elts=[
                py.Tuple(elts=[self.const(h.event.dotted), self.name(self.handler_names[id(h)])],
                         ctx=py.Load()) for h in decl.handlers], ctx=py.Load())
            base = decl.base.name if decl.base is not None else None
            registrations.append(self.at(decl.span, py.Expr(value=self.call(
                self.attr(RT, "define_class"), self.const(decl.name.name), self.const(base),
                self.name(realize_name) if realize_name != "None" else self.const(None),
                handlers))))
        for stmt in prog.body:
            if isinstance(stmt, n.OnHandler):
                body.extend(self.handler(stmt, entity=None))
                registrations.append(self.at(stmt.span, py.Expr(value=self.call(
                    self.attr(RT, "on"), self.const(stmt.event.dotted),
                    self.name(self.handler_names[id(stmt)])))))
        for fname in self.read_only_handlers:
            body.append(self.at(prog.span, py.Assign(
                targets=[py.Attribute(value=self.name(fname), attr="__cx_pure_event__",
                                      ctx=py.Store())], value=self.const(True))))
        for fname, sync in self.sync_handlers:
            body.append(self.at(prog.span, py.Assign(
                targets=[py.Attribute(value=self.name(fname), attr="__cx_sync__",
                                      ctx=py.Store())], value=self.name(sync))))
        for fname, label in self.labels:
            # Also the __qualname__, which coroutine objects (and so "still running: ..."
            # reports) take their name from.
            body.append(self.at(prog.span, py.Assign(
                targets=[py.Attribute(value=self.name(fname), attr=attr, ctx=py.Store())
                         for attr in ("__cx_name__", "__qualname__")],
                value=self.const(label))))
        body.extend(registrations)
        body.append(self.top_level(prog))
        body.append(self.at(prog.span, py.Return(value=self.name("__cx_main__"))))
        params = [RT] if self.loops is None else [RT, NATIVE_PARAM]
        fn = py.FunctionDef(name="__cx_program__", args=self.arguments(params, len(params) - 1),
                            body=body, decorator_list=[], returns=None)
        fn.type_params = []  # type: ignore[attr-defined]  # required from Python 3.12
        return self.at(prog.span, fn)

    def arguments(self, names: list[str], defaults: int = 0,
                  vararg: str | None = None) -> py.arguments:
        return py.arguments(posonlyargs=[], args=[py.arg(arg=a) for a in names],
                            vararg=py.arg(arg=vararg) if vararg else None,
                            kwonlyargs=[], kw_defaults=[],
                            defaults=[self.const(None)] * defaults)

    def function(self, name: str, params: list[str], body_stmts: list[n.Stmt], span: Span,
                 kind: str, in_entity: bool, prologue: list[py.stmt] | None = None,
                 defaults: int = 0, is_async: bool = True, vararg: str | None = None) -> Any:
        saved = self.fn
        self.fn = _Function(kind)
        self.fn.in_entity = in_entity
        body = list(prologue or [])
        for s in body_stmts:
            body.extend(self.stmt(s))
        if self.fn.assigned_globals and not self.repl:
            body.insert(0, self.at(span, py.Nonlocal(names=sorted(self.fn.assigned_globals))))
        if not body:
            body.append(self.at(span, py.Pass()))
        self.fn = saved
        cls = py.AsyncFunctionDef if is_async else py.FunctionDef
        fn = cls(name=name, args=self.arguments(params, defaults, vararg), body=body,
                 decorator_list=[], returns=None)
        fn.type_params = []  # type: ignore[union-attr]  # required from Python 3.12
        return self.at(span, fn)

    def handler(self, h: n.OnHandler, entity: str | None) -> list[py.stmt]:
        base = ("on_" + (entity + "_" if entity else "") + "_".join(h.event.parts))
        name = self.fresh(base)
        self.handler_names[id(h)] = name
        event_param = "_event"
        # `on a.b { ... }` binds `event` implicitly; its declaration is the handler itself.
        binding = self.info.binding_of(h.param if h.param is not None else h)
        if binding is not None:
            event_param = self.var_name(binding)
        if binding is None or self.event_read_only(h, binding):
            self.read_only_handlers.append(name)
        label = f"{entity}: on {h.event.dotted}" if entity else f"on {h.event.dotted}"
        self.labels.append((name, label))
        params = [RT, SELF, event_param]
        if not self.suspends(h.body):
            # No service call and no `new`: the body never suspends, so it is also compiled
            # as a plain function that `emit` runs as a callback instead of a task (same
            # FIFO ready queue, rule 33). Branches still await the `async def`.
            sync = self.fresh(name + "_sync")
            self.labels.append((sync, label))
            self.sync_handlers.append((name, sync))
            plain = self.function(sync, params, h.body.body, h.span, "handler",
                                  entity is not None, is_async=False)
            call = self.call(self.name(sync), *[self.name(x) for x in params])
            wrapper = py.AsyncFunctionDef(name=name, args=self.arguments(params),
                                          body=[py.Return(value=call)], decorator_list=[],
                                          returns=None)
            wrapper.type_params = []  # type: ignore[attr-defined]  # required from Python 3.12
            return [plain, self.at(h.span, wrapper)]
        return [self.function(name, params, h.body.body, h.span, "handler", entity is not None)]

    @staticmethod
    def suspends(body: n.Block) -> bool:
        """Whether running ``body`` can suspend (a service call or a ``new``)."""
        return any(isinstance(x, (n.ServiceCall, n.New)) for x in walk(body))

    def event_read_only(self, h: n.OnHandler, binding: Any) -> bool:
        """Whether the handler only reads properties of its event (never writes or passes
        the object on), so the runtime may hand every subscriber the same shallow copy."""
        safe: set[int] = set()
        targets: set[int] = set()
        for node in walk(h.body):
            if isinstance(node, (n.Member, n.Index)) and isinstance(node.obj, n.Name):
                safe.add(id(node.obj))
            elif isinstance(node, n.Assign):
                targets.add(id(node.target))
        for node in walk(h.body):
            if isinstance(node, (n.Member, n.Index)) and id(node) in targets \
                    and isinstance(node.obj, n.Name):
                ref = self.info.ref(node.obj)
                if ref is not None and ref.binding is binding:
                    return False
            if isinstance(node, n.Name) and id(node) not in safe:
                ref = self.info.ref(node)
                if ref is not None and ref.binding is binding:
                    return False
        return True

    def realize(self, r: n.Realize, name: str) -> py.AsyncFunctionDef:
        params = [RT, SELF]
        prologue: list[py.stmt] = []
        for i, p in enumerate(r.params):
            binding = self.info.binding_of(p)
            pname = self.var_name(binding) if binding is not None \
                else self.names.of(id(p), "v_" + p.name.name)
            if i == 0:
                prologue.append(self.at(p.span, py.Assign(targets=[self.name(pname, True)],
                                                          value=self.name(SELF))))
            else:
                params.append(pname)
        # Rule 29: later parameters take later `new` arguments or null, and extra
        # arguments are ignored (CX312 warns), so a realize never fails on arity.
        return self.function(name, params, r.body.body, r.span, "realize", True,
                             prologue=prologue, defaults=len(params) - 2, vararg=EXTRA)

    def top_level(self, prog: n.Program) -> py.AsyncFunctionDef:
        stmts = [s for s in prog.body if not isinstance(s, (n.OnHandler, n.EntityDecl))]
        fn = self.function("__cx_main__", [RT], stmts, prog.span, "top", False)
        return fn

    def var_name(self, binding: Binding) -> str:
        """The Python name of a variable: one per binding, never another's."""
        if binding.kind is NameKind.GLOBAL:
            return self.global_name(binding.name)
        return self.names.of(id(binding), "v_" + binding.name)

    def global_name(self, name: str) -> str:
        """The closure variable of the top-level ``var name``."""
        return self.names.of(("global", name), "g_" + name)

    # --------------------------------------------------------------- statements

    def stmt(self, s: n.Stmt) -> list[py.stmt]:
        method = getattr(self, "s_" + type(s).__name__, None)
        if method is None:
            raise CodegenError(f"cannot compile {type(s).__name__}", s.span)
        out: list[py.stmt] = method(s)
        return [self.at(s.span, x) for x in out]

    def block(self, s: n.Stmt | None) -> list[py.stmt]:
        if s is None:
            return []
        out = self.stmt(s)
        return out or [self.at(s.span, py.Pass())]

    def s_Block(self, s: n.Block) -> list[py.stmt]:
        out: list[py.stmt] = []
        for x in s.body:
            out.extend(self.stmt(x))
        return out

    def s_Empty(self, s: n.Empty) -> list[py.stmt]:
        return []

    def s_VarDecl(self, s: n.VarDecl) -> list[py.stmt]:
        binding = self.info.binding_of(s)
        if binding is None:
            raise CodegenError(f"unresolved variable `{s.name.name}`", s.span)
        value = self.expr(s.init) if s.init is not None else self.const(None)
        return [py.Assign(targets=[self.store_target(binding)],
                          value=value)]

    def s_ExprStmt(self, s: n.ExprStmt) -> list[py.stmt]:
        e = s.expr
        if isinstance(e, n.Assign) and e.op == "=" and isinstance(e.target, n.Name):
            b = self.binding_for_store(e.target)
            return [py.Assign(targets=[self.store_target(b)],
                              value=self.expr(e.value))]
        return [py.Expr(value=self.effect(e))]

    def s_Emit(self, s: n.Emit) -> list[py.stmt]:
        payload = self.expr(s.payload) if s.payload is not None else self.const(None)
        return [py.Expr(value=self.call(self.attr(RT, "emit"), self.const(s.event.dotted),
                                        payload, self.const(self.sid(s.span))))]

    def s_If(self, s: n.If) -> list[py.stmt]:
        return [py.If(test=self.truth(s.cond), body=self.block(s.then),
                      orelse=self.block(s.orelse) if s.orelse is not None else [])]

    def s_While(self, s: n.While) -> list[py.stmt]:
        self.fn.loops.append(s)
        body = self.block(s.body)
        self.fn.loops.pop()
        start, tick = self.guard(s, body)
        loop = py.While(test=self.truth(s.cond), body=[tick, *body], orelse=[])
        return [start, self.lifted(s, start, loop)]

    def s_ForIn(self, s: n.ForIn) -> list[py.stmt]:
        binding = self.info.binding_of(s)
        if binding is None:
            raise CodegenError(f"unresolved loop variable `{s.var.name}`", s.span)
        target = self.store_target(binding)
        self.fn.loops.append(s)
        body = self.block(s.body)
        self.fn.loops.pop()
        it = self.helper(V, "iterate", self.expr(s.iterable), self.const(self.sid(s.iterable.span)))
        start, tick = self.guard(s, body)
        return [start, py.For(target=target, iter=it, body=[tick, *body], orelse=[])]

    def s_ForC(self, s: n.ForC) -> list[py.stmt]:
        out: list[py.stmt] = []
        if s.init is not None:
            out.extend(self.stmt(s.init))
        self.fn.loops.append(s)
        body = self.block(s.body)
        self.fn.loops.pop()
        if s.update is not None:
            body.append(self.at(s.update.span, py.Expr(value=self.effect(s.update))))
        test = self.truth(s.cond) if s.cond is not None else self.const(True)
        start, tick = self.guard(s, body)
        out.append(start)
        out.append(self.lifted(s, start, py.While(test=test, body=[tick, *body], orelse=[])))
        return out

    def lifted(self, s: n.Stmt, start: py.stmt, loop: py.stmt) -> py.stmt:
        """``loop``, or for a loop the llvm backend lifted: its native path, else ``loop``."""
        code = self.loops.code_for(s) if self.loops is not None else None
        if code is None:
            return loop
        from cxpar.codegen.llvm.loop_ir import CHUNK

        assert isinstance(start, py.Assign) and isinstance(start.targets[0], py.Name)
        temps = [self.temp() for v in code.loop.state if not v.outer]

        return native_loop(code, self.loop_fns[id(s)], start.targets[0].id, self.temp(),
                           temps, self.load, self.store_target, self.sid, S, [loop], CHUNK)

    def guard(self, s: n.Stmt, body: list[py.stmt]) -> tuple[py.stmt, py.stmt]:
        """Bound every loop (SPEC §7: never a hang): ``--timeout``, Ctrl-C, loop limit.

        Returns the statement that starts the guard (before the loop) and the one that
        counts an iteration (first in the body); see :func:`cxpar.runtime.support.loop_tick`.
        """
        c = self.temp()
        start = py.Assign(targets=[self.name(c, True)],
                          value=self.helper(S, "loop_start", self.name(RT)))
        tick = py.Assign(targets=[self.name(c, True)], value=self.helper(
            S, "loop_tick", self.name(c), self.const(self.sid(s.span))))
        return self.at(s.span, start), self.at(s.span, tick)

    def s_Break(self, s: n.Break) -> list[py.stmt]:
        return [py.Break()]

    def s_Continue(self, s: n.Continue) -> list[py.stmt]:
        loop = self.fn.loops[-1] if self.fn.loops else None
        if isinstance(loop, n.ForC) and loop.update is not None:
            return [self.at(loop.update.span, py.Expr(value=self.effect(loop.update))),
                    py.Continue()]
        return [py.Continue()]

    def s_Return(self, s: n.Return) -> list[py.stmt]:
        return [py.Return(value=self.expr(s.value) if s.value is not None else self.const(None))]

    # -------------------------------------------------------------- expressions

    def expr(self, e: n.Expr) -> py.expr:
        method = getattr(self, "e_" + type(e).__name__, None)
        if method is None:
            raise CodegenError(f"cannot compile {type(e).__name__}", e.span)
        return self.at(e.span, method(e))

    def truth(self, e: n.Expr) -> py.expr:
        if isinstance(e, n.Bool):
            return self.at(e.span, self.const(e.value))
        return self.at(e.span, self.helper(V, "truthy", self.expr(e)))

    def e_Number(self, e: n.Number) -> py.expr:
        return self.const(e.value)

    def e_String(self, e: n.String) -> py.expr:
        return self.const(e.value)

    def e_Bool(self, e: n.Bool) -> py.expr:
        return self.const(e.value)

    def e_Null(self, e: n.Null) -> py.expr:
        return self.const(None)

    def e_This(self, e: n.This) -> py.expr:
        return self.name(SELF)

    def e_Name(self, e: n.Name) -> py.expr:
        ref = self.info.ref(e)
        if ref is None:
            raise CodegenError(f"unresolved name `{e.id}`", e.span)
        kind = ref.kind
        if kind is NameKind.SELF:
            return self.name(SELF)
        if kind in (NameKind.LOCAL, NameKind.PARAM, NameKind.GLOBAL) and ref.binding is not None:
            return self.load(ref.binding)
        if kind is NameKind.ENTITY:
            return self.helper(S, "entity_value", self.const(e.id))
        if kind is NameKind.BUILTIN:
            return self.helper(S, "builtin_value", self.const(e.id))
        if kind is NameKind.EVENT:
            # An event name inside a `handlers: [...]` of an ordinary literal (model doc).
            return self.const(ref.name)
        return self.helper(S, "fail", self.const(f"`{e.id}` is not a value"),
                           self.const(self.sid(e.span)))

    def binding_for_store(self, e: n.Name) -> Any:
        ref = self.info.ref(e)
        if ref is None or ref.binding is None:
            raise CodegenError(f"cannot assign to `{e.id}`", e.span)
        return ref.binding

    def load(self, b: Binding) -> py.expr:
        """Read a variable (REPL globals live in the dict ``G``, keyed by CX name)."""
        if b.kind is NameKind.GLOBAL and self.repl:
            return py.Subscript(value=self.name("G"), slice=self.const(b.name), ctx=py.Load())
        return self.name(self.var_name(b))

    def store_target(self, b: Binding) -> py.expr:
        """An assignment target for a variable; records `nonlocal` globals."""
        if b.kind is NameKind.GLOBAL:
            if self.repl:
                return py.Subscript(value=self.name("G"), slice=self.const(b.name),
                                    ctx=py.Store())
            self.fn.assigned_globals.add(self.var_name(b))
        return self.name(self.var_name(b), True)

    def e_Member(self, e: n.Member) -> py.expr:
        ref = self.info.ref(e)
        if ref is not None and ref.kind is NameKind.EVENT:
            # An event name inside a `handlers: [...]` of an ordinary literal (model doc).
            return self.const(ref.name)
        return self.helper(V, "get_prop", self.expr(e.obj), self.const(e.name.name),
                           self.const(self.sid(e.name.span)))

    def e_Index(self, e: n.Index) -> py.expr:
        return self.helper(V, "get_index", self.expr(e.obj), self.expr(e.index),
                           self.const(self.sid(e.span)))

    def e_Call(self, e: n.Call) -> py.expr:
        args = [self.expr(a) for a in e.args]
        span = self.const(self.sid(e.span))
        ref = self.info.ref(e.func) if isinstance(e.func, (n.Name, n.Member)) else None
        if ref is not None and ref.kind is NameKind.BUILTIN and isinstance(e.func, n.Name):
            return self.builtin(e.func.id, args, span)
        if ref is not None and ref.kind is NameKind.EVENT:
            return self.helper(S, "fail", self.const(f"unknown function `{ref.name}`"), span)
        return self.call(self.attr(RT, "call"), self.expr(e.func),
                         py.List(elts=args, ctx=py.Load()), span)

    def builtin(self, name: str, args: list[py.expr], span: py.Constant) -> py.expr:
        def arg(i: int) -> py.expr:
            return args[i] if i < len(args) else self.const(None)

        if name == "print":
            return self.call(self.attr(RT, "print"), *args, span=span)
        if name == "len":
            return self.helper(V, "len_", arg(0), span)
        if name == "str":
            return self.helper(V, "str_", arg(0), span)
        if name == "num":
            return self.helper(V, "num", arg(0))
        if name == "keys":
            return self.helper(V, "keys", arg(0), span)
        if name == "now":
            return self.call(self.attr(RT, "now"))
        if name == "random":
            return self.call(self.attr(RT, "random"))
        if name == "parse_json":
            return self.helper(V, "parse_json", arg(0), span)
        if name == "to_json":
            return self.helper(V, "to_json", arg(0))
        return self.helper(S, "fail", self.const(f"unknown function `{name}`"), span)

    def e_New(self, e: n.New) -> py.expr:
        args = py.List(elts=[self.expr(a) for a in e.args], ctx=py.Load())
        return py.Await(value=self.call(self.attr(RT, "new"), self.const(e.cls.name), args,
                                        self.const(self.sid(e.span))))

    def e_Unary(self, e: n.Unary) -> py.expr:
        operand = self.expr(e.operand)
        if e.op == "!":
            return py.UnaryOp(op=py.Not(), operand=self.helper(V, "truthy", operand))
        fn = "neg" if e.op == "-" else "pos"
        return self.helper(V, fn, operand, self.const(self.sid(e.span)))

    def e_Binary(self, e: n.Binary) -> py.expr:
        op = e.op
        if op in ("&&", "||"):
            t = self.temp()
            bound = py.NamedExpr(target=self.name(t, True), value=self.expr(e.left))
            test = self.helper(V, "truthy", bound)
            other = self.expr(e.right)
            if op == "&&":
                return py.IfExp(test=test, body=other, orelse=self.name(t))
            return py.IfExp(test=test, body=self.name(t), orelse=other)
        left, right = self.expr(e.left), self.expr(e.right)
        span = self.const(self.sid(e.span))
        if op in _ARITH:
            return self.helper(V, _ARITH[op], left, right, span)
        if op in _COMPARE:
            return self.helper(V, _COMPARE[op], left, right, span)
        if op == "==":
            return self.helper(V, "eq", left, right)
        if op == "!=":
            return self.helper(V, "ne", left, right)
        raise CodegenError(f"unknown operator `{op}`", e.span)

    def e_Conditional(self, e: n.Conditional) -> py.expr:
        return py.IfExp(test=self.truth(e.cond), body=self.expr(e.then),
                        orelse=self.expr(e.orelse))

    def e_Assign(self, e: n.Assign) -> py.expr:
        if not e.postfix:
            return self.assign(e)
        # `x++` is `x += 1` whose value is the old value (rule 48): `(x := old + 1, old)[1]`,
        # with `old` bound inside the update so the target is evaluated once.
        old = self.temp()
        return py.Subscript(value=py.Tuple(elts=[self.assign(e, old), self.name(old)],
                                           ctx=py.Load()),
                            slice=self.const(1), ctx=py.Load())

    def effect(self, e: n.Expr) -> py.expr:
        """``e`` evaluated for its effect only (statements, a `for`'s update)."""
        if isinstance(e, n.Assign):
            return self.at(e.span, self.assign(e))
        return self.expr(e)

    def assign(self, e: n.Assign, old: str | None = None) -> py.expr:
        """The assignment's Python expression, valued as the new value; ``old`` names a
        temporary that receives the target's previous value."""
        span = self.const(self.sid(e.span))
        value = self.expr(e.value)
        target = e.target

        def combine(current: py.expr) -> py.expr:
            if old is not None:
                current = py.NamedExpr(target=self.name(old, True), value=current)
            if e.op == "=":
                return value
            return self.helper(V, _ARITH[e.op[0]], current, value, span)

        if isinstance(target, n.Name):
            b = self.binding_for_store(target)
            current = self.load(b)
            if b.kind is NameKind.GLOBAL and self.repl:
                return self.helper(S, "set_global", self.name("G"), self.const(b.name),
                                   combine(current))
            tgt = self.store_target(b)
            assert isinstance(tgt, py.Name)
            return py.NamedExpr(target=tgt, value=combine(current))
        if isinstance(target, n.This):
            raise CodegenError("cannot assign to `this`", e.span)
        if isinstance(target, n.Member):
            t = self.temp()
            obj = py.NamedExpr(target=self.name(t, True), value=self.expr(target.obj))
            key = self.const(target.name.name)
            current = self.helper(V, "get_prop", self.name(t), key, span)
            return self.helper(V, "set_prop", obj, key, combine(current), span)
        if isinstance(target, n.Index):
            t, k = self.temp(), self.temp()
            obj = py.NamedExpr(target=self.name(t, True), value=self.expr(target.obj))
            idx = py.NamedExpr(target=self.name(k, True), value=self.expr(target.index))
            current = self.helper(V, "get_index", self.name(t), self.name(k), span)
            return self.helper(V, "set_index", obj, idx, combine(current), span)
        raise CodegenError("this expression cannot be assigned to", target.span)

    def e_Object(self, e: n.Object) -> py.expr:
        return py.Dict(keys=[self.at(p.key.span, self.const(p.key.name)) for p in e.props],
                       values=[self.expr(p.value) for p in e.props])

    def e_Array(self, e: n.Array) -> py.expr:
        return py.List(elts=[self.expr(i) for i in e.items], ctx=py.Load())

    def e_EventPayload(self, e: n.EventPayload) -> py.expr:
        """``a.b { k: v }`` as a value (in a lenient ``handlers`` list): ``{event, ...}``."""
        payload = self.expr(e.payload)
        assert isinstance(payload, py.Dict)
        return py.Dict(keys=[self.const("event"), *payload.keys],
                       values=[self.const(e.event.dotted), *payload.values])

    def tool(self, t: Any) -> py.expr:
        """One ``tools`` item for the runtime: ``{event, doc, description?, parameters?}``."""
        keys: list[py.expr | None] = [self.const("event"), self.const("doc")]
        values: list[py.expr] = [self.const(t.event),
                                 self.const(tool_doc(self.info, t.event))]
        if t.description is not None:
            keys.append(self.const("description"))
            values.append(self.expr(t.description))
        if t.parameters is not None:
            keys.append(self.const("parameters"))
            values.append(self.expr(t.parameters))
        return py.Dict(keys=keys, values=values)

    def e_ServiceCall(self, e: n.ServiceCall) -> py.expr:
        call: AnalysedCall = self.info.call(e)
        span = self.const(self.sid(e.span))
        if call.function_call:
            # `print "x";` -- a builtin function written like a service (warning CX311).
            return self.builtin(call.service, [self.expr(e.arg)], span)
        if (call.service == "await" and call.is_literal and not call.branches
                and not call.items and "fallback" not in call.reserved
                and all(isinstance(v, (n.Number, n.String, n.Bool, n.Null, n.Array))
                        for v in call.reserved.values())):
            # No branches: literal `timeout`, `retries`, `priority`, `concurrency` (checked
            # by analysis) change nothing, so this is a plain timer.
            req: py.expr = py.Dict(keys=[self.const(k) for k, _ in call.request],
                                   values=[self.expr(v) for _, v in call.request])
            if all(isinstance(v, (n.Number, n.String, n.Bool, n.Null)) for _, v in call.request):
                # A constant request is built once per program (the runtime never mutates
                # a request), which keeps paced handlers small in memory.
                name = self.fresh("_k")
                self.constants.append(self.at(e.span, py.Assign(
                    targets=[self.name(name, True)], value=req)))
                req = self.name(name)
            return py.Await(value=self.call(self.attr(RT, "await_"), span, req))
        if call.is_literal:
            request: py.expr = py.Dict(
                keys=[self.const(k) for k, _ in call.request],
                values=[self.expr(v) for _, v in call.request])
        else:
            request = self.helper(V, "to_request", self.expr(e.arg))
        branches = py.List(elts=[py.Tuple(elts=[
            self.const(b.key), self.const(b.event),
            self.expr(b.extra) if b.extra is not None else self.const(None)], ctx=py.Load())
            for b in call.branches], ctx=py.Load())
        items = py.List(elts=[py.Tuple(elts=[
            self.const(i.event),
            self.expr(i.extra) if i.extra is not None else self.const(None)], ctx=py.Load())
            for i in call.items], ctx=py.Load())
        kw: dict[str, py.expr] = {}
        for key in ("timeout", "retries", "priority", "concurrency"):
            if key in call.reserved:
                kw[key] = self.expr(call.reserved[key])
        for key in ("model", "endpoint", "schema", "tool_rounds"):
            if key in call.reserved:
                kw[key] = self.expr(call.reserved[key])
        if call.stream_event is not None:
            kw["stream"] = self.const(call.stream_event)
        if "tools" in call.reserved:
            kw["tools"] = py.List(elts=[self.tool(t) for t in call.tools], ctx=py.Load())
        if call.fallback_event is not None:
            kw["fallback_event"] = self.const(call.fallback_event)
        elif "fallback" in call.reserved:
            kw["fallback"] = self.expr(call.reserved["fallback"])
        if self.fn.in_entity:
            kw["caller"] = self.name(SELF)
        args: list[py.expr] = [self.const(call.service), span, request]
        if call.branches or call.items:
            args += [branches, items]
        return py.Await(value=self.call(self.attr(RT, "service"), *args, **kw))


def tool_doc(info: Any, event: str) -> str | None:
    """The ``///`` doc comment of the first handler of ``event`` that has one (the
    tool's description for the model)."""
    for h in info.subscribers(event):
        doc = h.node.doc
        if doc:
            lines = [ln.strip().removeprefix("///").strip() for ln in doc.splitlines()]
            text = " ".join(ln for ln in lines if ln and not ln.startswith("@"))
            if text:
                return text
    return None


def generate(comp: Compilation, *, repl: bool = False, loops: Any = None,
             ) -> tuple[py.Module, list[tuple[str, int, int, int, int]]]:
    """The Python module for ``comp`` and its span table (``repl``: globals persist on
    ``rt`` between entries, see :func:`cxpar.runtime.support.repl_globals`; ``loops``:
    the llvm backend's lifted loops, which get a native path)."""
    gen = PyGen(comp, repl=repl, loops=loops)
    module = gen.module()
    py.fix_missing_locations(module)
    return module, gen.spans
