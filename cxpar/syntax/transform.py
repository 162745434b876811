"""Build AST nodes straight from the LALR parser's reductions (no parse tree).

Methods only build nodes and desugar (``emit a.b, x;`` and ``emit a.b x;`` give the
same :class:`~cxpar.ast.nodes.Emit`). Name checks belong to analysis.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lark import Token

from cxpar.ast import nodes as n
from cxpar.diagnostics.habits import FOREIGN_WORDS, foreign_construct, strict_equality
from cxpar.diagnostics.model import Diagnostic, error, warning
from cxpar.span import Span
from cxpar.syntax import strings

_NOT_RULES = frozenset({"span", "tspan", "ident", "doc_before", "callback_for", "problem",
                        "text_of", "var_keyword"})


#: Tokens that carry meaning for ToAst; every other token (punctuation, keywords) is
#: used only for positions.
KEEP = frozenset({"NAME", "NUMBER", "STRING", "ASSIGN_OP", "OR_OP", "AND_OP", "EQ_OP",
                  "REL_OP", "ADD_OP", "MUL_OP", "UNARY_OP", "INCDEC", "CONSCIOUS", "OBJECT",
                  "ARRAY_SUFFIX", "LET", "CONST"})

Meta = Span


class ToAst:
    """Lark callbacks that turn reductions into AST nodes with spans.

    Lark calls them during parsing (``Lark(transformer=...)``: no parse tree is built).
    Lark's internal transformer cannot pass ``meta``, so the parser keeps all tokens and
    :meth:`callbacks` wraps each method: the span comes from the first and last child
    (tokens and nodes alike), punctuation is dropped, and the method receives
    ``(span, *children)``.
    """

    def __init__(self, file: str, docs: dict[int, str] | None = None) -> None:
        self.file = file
        #: ``///`` doc comments by the line they end on, filled by the lexer callback.
        self.docs = docs if docs is not None else {}
        #: The source text (set by the parser; doc comments need line starts).
        self.text = ""
        #: Syntax problems found while building nodes (errors and warnings).
        self.problems: list[Diagnostic] = []

    # ------------------------------------------------------------------ helpers

    def span(self, meta: Span) -> Span:
        return meta

    def callback_for(self, name: str) -> Callable[[list[Any]], Any] | None:
        """Lark's callback ``callback(children)`` for rule ``name`` (None: not a rule)."""
        method = getattr(self, name, None)
        if method is None or name.startswith("_") or name in _NOT_RULES:
            return None
        builder = self

        def callback(children: list[Any]) -> Any:
            first: Any = None
            last: Any = None
            kept: list[Any] = []
            for c in children:
                if type(c) is Token:
                    if c.type in KEEP:
                        kept.append(c)
                    if c.start_pos is not None:
                        if first is None:
                            first = c
                        last = c
                    continue
                kept.append(c)
                if isinstance(c, list):
                    if c and isinstance(c[0], n.Node):
                        if first is None:
                            first = c[0].span
                        last = c[-1].span
                elif c is not None:
                    if first is None:
                        first = c.span
                    last = c.span
            return method(builder._join(first, last), *kept)

        callback.__name__ = name
        return callback

    def _join(self, first: Any, last: Any) -> Span:
        if first is None:
            return Span(self.file, 1, 1, 1, 1, 0, 0)
        if type(first) is Token:
            line, col, start = first.line, first.column, first.start_pos
        else:
            line, col, start = first.line, first.col, first.start
        if type(last) is Token:
            end_line, end_col, end = last.end_line, last.end_column, last.end_pos
        else:
            end_line, end_col, end = last.end_line, last.end_col, last.end
        return Span(self.file, line or 1, col or 1, end_line or 1, end_col or 1, start or 0,
                    end or 0)

    def primary(self, meta: Span, value: n.Expr) -> n.Expr:
        """``( value )``: the parentheses only group."""
        return value

    def tspan(self, tok: Token) -> Span:
        return Span(self.file, tok.line or 1, tok.column or 1, tok.end_line or 1,
                    tok.end_column or 1, tok.start_pos or 0, tok.end_pos or 0)

    def ident(self, tok: Token) -> n.Ident:
        return n.Ident(span=self.tspan(tok), name=str(tok))

    def problem(self, code: str, span: Span, message: str, help: str | None) -> None:
        """An error found while building nodes."""
        self.problems.append(error(code, message, span, help=help))

    def text_of(self, tok: Token) -> str:
        """The value of a STRING token (rule 31 escapes); escape issues become problems."""
        value, issues = strings.decode(str(tok))
        for iss in issues:
            line, col, at = tok.line or 1, (tok.column or 1) + iss.start, (tok.start_pos or 0)
            span = Span(self.file, line, col, line, col + iss.end - iss.start, at + iss.start,
                        at + iss.end)
            make = error if iss.error else warning
            self.problems.append(make("CX105" if iss.error else "CX113", iss.message, span,
                                      label=iss.label, help=iss.help))
        return value

    def doc_before(self, meta: Span) -> str | None:
        """The ``///`` comment block that ends on the line just above a declaration that
        starts its line (so the formatter, which keeps that layout, keeps the doc)."""
        text = self.text
        if text[text.rfind("\n", 0, meta.start) + 1:meta.start].strip():
            return None
        lines: list[str] = []
        at = meta.line - 1
        while at in self.docs:
            lines.append(self.docs[at])
            at -= 1
        return "\n".join(reversed(lines)) if lines else None

    # ------------------------------------------------------------- declarations

    def start(self, meta: Meta, *items: n.Stmt) -> n.Program:
        return n.Program(span=self.span(meta), body=list(items))

    def entity_decl(self, meta: Meta, kind: Token, name: Token, *rest: Any) -> n.EntityDecl:
        base = next((r for r in rest if isinstance(r, Token)), None)
        members = [r for r in rest if isinstance(r, n.Node)]
        realize = None
        handlers: list[n.OnHandler] = []
        for m in members:
            if isinstance(m, n.Realize):
                if realize is None:
                    realize = m
                else:
                    self.problem("CX110", m.span, "an entity has at most one `realize`",
                                 "merge the two `realize` blocks")
            elif isinstance(m, n.OnHandler):
                handlers.append(m)
        return n.EntityDecl(
            span=self.span(meta), kind=str(kind), name=self.ident(name),
            base=self.ident(base) if base is not None else None,
            realize=realize, handlers=handlers, doc=self.doc_before(meta))

    def realize_decl(self, meta: Meta, params: list[n.Param] | None,
                     body: n.Block) -> n.Realize:
        return n.Realize(span=self.span(meta), params=params or [], body=body)

    def params(self, meta: Meta, *params: Any) -> list[n.Param]:
        return [p for p in params if isinstance(p, n.Param)]

    def param(self, meta: Meta, name: Token, *rest: Any) -> n.Param:
        type_ref = next((r for r in rest if isinstance(r, n.TypeRef)), None)
        return n.Param(span=self.span(meta), name=self.ident(name), type=type_ref)

    def type_ref(self, meta: Meta, name: Token, *rest: Any) -> n.TypeRef:
        args = [r for r in rest if isinstance(r, n.TypeRef)]
        is_array = any(isinstance(r, Token) and r.type == "ARRAY_SUFFIX" for r in rest)
        return n.TypeRef(span=self.span(meta), name=str(name), args=args, is_array=is_array)

    def on_handler(self, meta: Meta, modifier: Token | None, event: n.EventName,
                   *rest: Any) -> n.OnHandler:
        param = next((r for r in rest if isinstance(r, n.Param)), None)
        body = rest[-1]
        if modifier is not None and str(modifier) != "async":
            self.problem("CX111", self.tspan(modifier), f"unknown handler modifier `{modifier}`",
                         "the only modifier is `async`: `on async a.b (event) { ... }`")
        return n.OnHandler(span=self.span(meta), event=event, param=param, body=body,
                           is_async=modifier is not None, doc=self.doc_before(meta))

    def event_name(self, meta: Meta, *parts: Token) -> n.EventName:
        return n.EventName(span=self.span(meta), parts=[str(p) for p in parts])

    # --------------------------------------------------------------- statements

    def block(self, meta: Meta, *body: n.Stmt) -> n.Block:
        return n.Block(span=self.span(meta), body=list(body))

    def var_keyword(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """Drop a leading `let`/`const` (read like `var`), reporting CX116 for it."""
        if args and isinstance(args[0], Token) and args[0].type in ("LET", "CONST"):
            word = str(args[0])
            self.problems.append(error(
                "CX116", f"CX has no `{word}`; use `var`", self.tspan(args[0]),
                label="not a CX keyword",
                help="declare variables with `var`: `var x = 1;` (CX's `var` is block-scoped "
                     "and assignable)"))
            return args[1:]
        return args

    def var_decl(self, meta: Meta, *args: Any) -> n.VarDecl:
        name, *rest = self.var_keyword(args)
        type_ref = next((r for r in rest if isinstance(r, n.TypeRef)), None)
        init = next((r for r in rest if isinstance(r, n.Expr)), None)
        return n.VarDecl(span=self.span(meta), name=self.ident(name), type=type_ref, init=init)

    def expr_stmt(self, meta: Meta, expr: n.Expr) -> n.Stmt:
        if isinstance(expr, n.ServiceCall) and expr.service.name in FOREIGN_WORDS:
            # `throw new Error("x");`, `using System.Text;`: parse as service calls, but are
            # statements of other languages (CX120), reported once, argument and all
            self.problems.append(foreign_construct(expr.service.span, expr.service.name))
            return n.Empty(span=self.span(meta))
        return n.ExprStmt(span=self.span(meta), expr=expr)

    def emit_stmt(self, meta: Meta, event: n.EventName, *rest: Any) -> n.Emit:
        payload = next((r for r in rest if isinstance(r, n.Expr)), None)
        return n.Emit(span=self.span(meta), event=event, payload=payload)

    def if_stmt(self, meta: Meta, cond: n.Expr, then: n.Stmt, *rest: Any) -> n.If:
        orelse = next((r for r in rest if isinstance(r, n.Stmt)), None)
        return n.If(span=self.span(meta), cond=cond, then=then, orelse=orelse)

    def while_stmt(self, meta: Meta, cond: n.Expr, body: n.Stmt) -> n.While:
        return n.While(span=self.span(meta), cond=cond, body=body)

    def for_stmt(self, meta: Meta, *args: Any) -> n.ForIn:
        name, iterable, body = [a for a in self.var_keyword(tuple(a for a in args if a is not None))
                                if not (isinstance(a, Token) and a.type == "VAR")][-3:]
        return n.ForIn(span=self.span(meta), var=self.ident(name), iterable=iterable, body=body)

    def for_c_stmt(self, meta: Meta, init: n.Stmt | None, cond: n.Expr | None,
                   update: n.Expr | None, body: n.Stmt) -> n.ForC:
        return n.ForC(span=self.span(meta), init=init, cond=cond, update=update, body=body)

    def for_var(self, meta: Meta, *args: Any) -> n.VarDecl:
        name, value = self.var_keyword(args)
        return n.VarDecl(span=self.span(meta), name=self.ident(name), init=value)

    def for_expr(self, meta: Meta, expr: n.Expr) -> n.ExprStmt:
        """An expression as a C-style ``for``'s initialiser (``for (i = 0; ...)``)."""
        return n.ExprStmt(span=expr.span, expr=expr)

    def block_call(self, meta: Meta, name: Token, arg: n.Object, body: n.Block) -> n.If:
        """``svc {props} {block}``: run the block when the call decides yes (desugared).

        ``is`` tests the call's ``result``, ``not`` its negation; ``when`` is a plain test
        of its ``condition`` prop (no provider call); any other service runs the block
        when its ``result`` is truthy.
        """
        span = self.span(meta)
        svc = self.ident(name)
        if svc.name == "when":
            cond = next((p.value for p in arg.props if p.key.name == "condition"), None)
            if cond is not None:
                return n.If(span=span, cond=cond, then=body)
        call = n.ServiceCall(span=svc.span.to(arg.span), service=svc, arg=arg)
        result: n.Expr = n.Member(span=call.span, obj=call,
                                  name=n.Ident(span=svc.span, name="result"))
        if svc.name == "not":
            result = n.Unary(span=call.span, op="!", operand=result)
        return n.If(span=span, cond=result, then=body)

    def block_call_expr(self, meta: Meta, name: Token, cond: n.Expr, body: n.Block) -> n.If:
        """``is { expr } { block }``: the expression is the call's ``condition``."""
        key = n.Ident(span=cond.span, name="condition")
        arg = n.Object(span=cond.span, props=[n.Prop(span=cond.span, key=key, value=cond)])
        return self.block_call(meta, name, arg, body)

    def break_stmt(self, meta: Meta) -> n.Break:
        return n.Break(span=self.span(meta))

    def continue_stmt(self, meta: Meta) -> n.Continue:
        return n.Continue(span=self.span(meta))

    def return_stmt(self, meta: Meta, *rest: Any) -> n.Return:
        value = next((r for r in rest if isinstance(r, n.Expr)), None)
        return n.Return(span=self.span(meta), value=value)

    def empty_stmt(self, meta: Meta) -> n.Empty:
        return n.Empty(span=self.span(meta))

    # -------------------------------------------------------------- expressions

    def assign(self, meta: Meta, target: n.Expr, op: Token, value: n.Expr) -> n.Assign:
        return n.Assign(span=self.span(meta), op=str(op), target=target, value=value)

    def binary(self, meta: Meta, left: n.Expr, op: Token, right: n.Expr) -> n.Binary:
        text = str(op)
        if text in ("===", "!=="):  # read as `==`/`!=`, reported once (CX117)
            text = text[:2]
            self.problems.append(strict_equality(self.tspan(op), str(op)))
        return n.Binary(span=self.span(meta), op=text, left=left, right=right)

    def conditional(self, meta: Meta, cond: n.Expr, then: n.Expr,
                    orelse: n.Expr) -> n.Conditional:
        return n.Conditional(span=self.span(meta), cond=cond, then=then, orelse=orelse)

    def update(self, meta: Meta, a: Any, b: Any) -> n.Assign:
        """``x++`` / ``--x`` desugar to ``x += 1`` / ``x -= 1``; the postfix forms keep the
        old value as the expression's value (rule 48)."""
        postfix = not isinstance(a, Token)
        op, target = (b, a) if postfix else (a, b)
        one = n.Number(span=self.tspan(op), value=1.0, text="1")
        return n.Assign(span=self.span(meta), op="+=" if str(op) == "++" else "-=",
                        target=target, value=one, postfix=postfix)

    def new_name(self, meta: Meta) -> n.Name:
        """``new`` used as a name, as in the event reference ``new.user``."""
        return n.Name(span=self.span(meta), id="new")

    def unary(self, meta: Meta, op: Token, operand: n.Expr) -> n.Unary:
        return n.Unary(span=self.span(meta), op=str(op), operand=operand)

    def service_call(self, meta: Meta, service: Token, arg: n.Expr) -> n.ServiceCall:
        return n.ServiceCall(span=self.span(meta), service=self.ident(service), arg=arg)

    def member(self, meta: Meta, obj: n.Expr, name: Token) -> n.Member:
        return n.Member(span=self.span(meta), obj=obj, name=self.ident(name))

    def index(self, meta: Meta, obj: n.Expr, index: n.Expr) -> n.Index:
        return n.Index(span=self.span(meta), obj=obj, index=index)

    def call(self, meta: Meta, func: n.Expr, args: list[n.Expr] | None) -> n.Call:
        return n.Call(span=self.span(meta), func=func, args=args or [])

    def args(self, meta: Meta, *items: n.Expr | None) -> list[n.Expr]:
        return [i for i in items if i is not None]

    def name(self, meta: Meta, tok: Token) -> n.Name:
        return n.Name(span=self.span(meta), id=str(tok))

    def this(self, meta: Meta) -> n.This:
        return n.This(span=self.span(meta))

    def new_expr(self, meta: Meta, cls: Token, args: list[n.Expr] | None) -> n.New:
        return n.New(span=self.span(meta), cls=self.ident(cls), args=args or [])

    def new_object(self, meta: Meta, cls: Token, obj: n.Object) -> n.New:
        return n.New(span=self.span(meta), cls=self.ident(cls), args=[obj])

    def number(self, meta: Meta, tok: Token) -> n.Number:
        text = str(tok)
        if "e" in text or "E" in text:
            written = format(Decimal(text), "f")
            self.problems.append(error(
                "CX119", f"CX numbers have no exponent: write `{written}`", self.span(meta),
                label=f"means {written}",
                help="CX numbers are written out in digits: `digits` or `digits.digits`"))
        return n.Number(span=self.span(meta), value=float(text), text=text)

    def string(self, meta: Meta, tok: Token) -> n.String:
        return n.String(span=self.span(meta), value=self.text_of(tok), raw=str(tok))

    def true(self, meta: Meta) -> n.Bool:
        return n.Bool(span=self.span(meta), value=True)

    def false(self, meta: Meta) -> n.Bool:
        return n.Bool(span=self.span(meta), value=False)

    def null(self, meta: Meta) -> n.Null:
        return n.Null(span=self.span(meta))

    def object(self, meta: Meta, *props: n.Prop | None) -> n.Object:
        return n.Object(span=self.span(meta), props=[p for p in props if p is not None])

    def prop(self, meta: Meta, key: Token, value: n.Expr) -> n.Prop:
        quoted = key.type == "STRING"
        name = self.text_of(key) if quoted else str(key)
        return n.Prop(span=self.span(meta), key=n.Ident(span=self.tspan(key), name=name),
                      value=value, quoted=quoted)

    def array(self, meta: Meta, *items: n.Expr | None) -> n.Array:
        return n.Array(span=self.span(meta), items=[i for i in items if i is not None])

    def event_payload(self, meta: Meta, head: n.Expr, last: Token,
                      payload: n.Object) -> n.EventPayload | n.Expr:
        parts = [str(last)]
        node: n.Expr = head
        while isinstance(node, n.Member):
            parts.append(node.name.name)
            node = node.obj
        if not isinstance(node, n.Name):
            self.problem("CX112", head.span, "only an event name can take a payload here",
                         "write the event as a dotted name: `a.b { k: v }`")
            parts.append("?")
        else:
            parts.append(node.id)
        parts.reverse()
        ev_span = head.span.to(self.tspan(last))
        return n.EventPayload(span=self.span(meta),
                              event=n.EventName(span=ev_span, parts=parts), payload=payload)

