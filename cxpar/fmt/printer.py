"""Rules that turn the formatter's parse tree into a document (docs/style.md).

One method per grammar rule (``r_<rule>``); a rule this module does not know is
printed token by token with single spaces, which is always valid CX. Every token goes
through :meth:`Printer.tok` (or :meth:`Printer.comments_only` when the style drops it,
like a trailing comma), which prints the comments attached to it, so none is lost.
"""

from __future__ import annotations

from collections.abc import Callable

from lark import Token, Tree

from cxpar.fmt.cst import Comment, Cst
from cxpar.fmt.doc import (
    BLANKLINE,
    HARDLINE,
    LINE,
    SOFTLINE,
    Concat,
    DocLike,
    Fill,
    Group,
    IfBreak,
    Indent,
    Verbatim,
)

Node = Tree[Token] | Token

_WS = " \t\n\f\r\ufeff"
#: No space before these tokens in a run of tokens, and none after the next set.
_NO_SPACE_BEFORE = frozenset({"SEMICOLON", "COMMA", "COLON", "RPAR", "RSQB", "DOT"})
_NO_SPACE_AFTER = frozenset({"LPAR", "LSQB", "DOT"})


class FormatBug(Exception):
    """The printer lost or repeated a comment (a bug in cxpar, never the input's fault)."""


def _token(node: Node) -> Token:
    if not isinstance(node, Token):  # pragma: no cover - a grammar change this module missed
        raise FormatBug(f"expected a token, found rule {node.data!r}")
    return node


def first_token(node: Node) -> Token:
    while not isinstance(node, Token):
        node = next(c for c in node.children if c is not None)
    return node


def last_token(node: Node) -> Token:
    while not isinstance(node, Token):
        node = next(c for c in reversed(node.children) if c is not None)
    return node


def kids(tree: Tree[Token]) -> list[Node]:
    return [c for c in tree.children if c is not None]


def is_rule(node: Node | None, name: str) -> bool:
    return isinstance(node, Tree) and node.data == name


class Printer:
    """Builds the document of one parsed file."""

    def __init__(self, cst: Cst) -> None:
        self.text = cst.text
        self.leading = cst.comments.leading
        self.trailing = cst.comments.trailing
        self.blank_after_leading = cst.comments.blank_after_leading
        self.at_end = cst.comments.at_end
        self.total = cst.comments.total
        self.emitted = 0
        self.deferred: set[int] = set()
        self.tree = cst.tree
        self.rules: dict[str, Callable[[Tree[Token]], DocLike]] = {
            name[2:]: getattr(self, name) for name in dir(self) if name.startswith("r_")
        }

    # ------------------------------------------------------------------ entry

    def document(self) -> DocLike:
        """The whole file; raises :class:`FormatBug` if a comment was not printed once."""
        parts = self.statements(kids(self.tree))
        for i, c in enumerate(self.at_end):
            if i == 0 or self.at_end[i - 1].newline_after:
                parts.append(BLANKLINE if c.blank_before else HARDLINE)
            parts.append(self.comment(c))
        self.emitted += len(self.at_end)
        if self.emitted != self.total:
            raise FormatBug(f"printed {self.emitted} of {self.total} comments")
        return Concat(parts)

    def p(self, node: Node) -> DocLike:
        if isinstance(node, Token):
            return self.tok(node)
        rule = self.rules.get(str(node.data))
        if rule is None:
            return self.spaced(kids(node))
        return rule(node)

    # --------------------------------------------------------------- comments

    def comment(self, c: Comment) -> DocLike:
        text = c.text.rstrip() if c.is_line else c.text
        return Verbatim(text) if "\n" in text else text

    def leading_docs(self, start: int, *, dropped: bool = False) -> list[DocLike]:
        comments = self.leading.get(start)
        if not comments:
            return []
        parts: list[DocLike] = []
        for i, c in enumerate(comments):
            if i == 0 or comments[i - 1].newline_after:
                parts.append(BLANKLINE if c.blank_before else HARDLINE)
            parts.append(self.comment(c))
            if not c.newline_after:
                parts.append(" ")
        if comments[-1].newline_after:
            blank = start in self.blank_after_leading and not dropped
            parts.append(BLANKLINE if blank else HARDLINE)
        self.emitted += len(comments)
        return parts

    def trailing_docs(self, end: int) -> list[DocLike]:
        comments = self.trailing.get(end)
        if not comments:
            return []
        parts: list[DocLike] = []
        for c in comments:
            parts.append(" ")
            parts.append(self.comment(c))
            if c.is_line:
                parts.append(HARDLINE)
        self.emitted += len(comments)
        return parts

    def tok(self, t: Node, *, lead: bool = True) -> DocLike:
        """A token as written, with its comments."""
        if not isinstance(t, Token):
            return self.p(t)
        start, end = t.start_pos or 0, t.end_pos or 0
        before = lead and start in self.leading
        after = end in self.trailing and end not in self.deferred
        if not before and not after:
            return str(t)
        parts = self.leading_docs(start) if before else []
        parts.append(str(t))
        if after:
            parts.extend(self.trailing_docs(end))
        return Concat(parts)

    def comments_only(self, t: Node) -> DocLike:
        """The comments of a token the style leaves out."""
        t = _token(t)
        before = self.leading_docs(t.start_pos or 0, dropped=True)
        after = self.trailing_docs(t.end_pos or 0)
        if before and after and before[-1] == " ":
            before.pop()
        return Concat(before + after)

    def blank_before(self, node: Node) -> bool:
        """Whether a blank line separates ``node`` (or its leading comments) from the code
        before it in the source."""
        start = first_token(node).start_pos or 0
        comments = self.leading.get(start)
        if comments:
            return comments[0].blank_before
        text = self.text
        i = start
        newlines = 0
        while i > 0 and text[i - 1] in _WS:
            i -= 1
            if text[i] == "\n":
                newlines += 1
        return newlines >= 2 and i > 0 and text[i - 1] not in "{(["

    # ------------------------------------------------------------ layouts

    def spaced(self, items: list[Node]) -> DocLike:
        """Tokens and subtrees separated by single spaces, none around ``.``, ``(``, ``;``…"""
        parts: list[DocLike] = []
        prev: Node | None = None
        for item in items:
            if prev is not None and not (
                (isinstance(item, Token) and item.type in _NO_SPACE_BEFORE)
                or (isinstance(prev, Token) and prev.type in _NO_SPACE_AFTER)
            ):
                parts.append(" ")
            parts.append(self.p(item))
            prev = item
        return Concat(parts)

    def statements(self, items: list[Node]) -> list[DocLike]:
        """One statement (or member) per line, source blank lines kept up to one; a lone
        ``;`` stays after the statement before it."""
        parts: list[DocLike] = []
        for i, item in enumerate(items):
            lone_semicolon = is_rule(item, "empty_stmt") or (
                isinstance(item, Token) and item.type == "SEMICOLON")
            if i and not lone_semicolon:
                parts.append(BLANKLINE if self.blank_before(item) else HARDLINE)
            parts.append(self.p(item))
        return parts

    def block_body(self, open_: Node, items: list[Node], close: Node) -> DocLike:
        inner = self.statements(items) + self.leading_docs(_token(close).start_pos or 0)
        if not inner:
            return Concat([self.tok(open_), self.tok(close)])
        return Concat([self.tok(open_), Indent(Concat([HARDLINE, *inner])), HARDLINE,
                       self.tok(close, lead=False)])

    def delimited(self, open_: Node, inner: list[Node], close: Node, *,
                  spaced: bool) -> DocLike:
        """``open item, item close`` on one line if it fits, else one item per line with a
        trailing comma."""
        items: list[Node] = []
        commas: list[Token] = []
        for c in inner:
            if isinstance(c, Token) and c.type == "COMMA":
                commas.append(c)
            else:
                items.append(c)
        close_comments = self.leading_docs(_token(close).start_pos or 0)
        if not items:
            if not close_comments:
                return Concat([self.tok(open_), self.tok(close)])
            return Concat([self.tok(open_), Indent(Concat(close_comments)), HARDLINE,
                           self.tok(close, lead=False)])
        line = LINE if spaced else SOFTLINE
        body: list[DocLike] = [line]
        for i, item in enumerate(items):
            # Comments after an item go after its comma (the style may add or drop it).
            end = last_token(item).end_pos or 0
            self.deferred.add(end)
            body.append(self.p(item))
            self.deferred.discard(end)
            last = i + 1 == len(items)
            body.append(IfBreak(",") if last else ",")
            body.extend(self.trailing_docs(end))
            if i < len(commas):
                body.append(self.comments_only(commas[i]))
            if not last:
                body.append(BLANKLINE if self.blank_before(items[i + 1]) else LINE)
        body.extend(close_comments)
        return Group(Concat([self.tok(open_), Indent(Concat(body)), line,
                             self.tok(close, lead=False)]))

    def call_args(self, open_: Node, args: Node | None, close: Node) -> DocLike:
        """``(a, b)``; a lone argument hugs the parentheses: ``f({ … })``, ``f(a + b)``."""
        inner = kids(args) if isinstance(args, Tree) else []
        if (len(inner) == 1 and not self._has_comments(open_)
                and not self._has_comments(close)):
            return Concat([self.tok(open_), self.p(inner[0]), self.tok(close)])
        return self.delimited(open_, inner, close, spaced=False)

    def _has_comments(self, node: Node) -> bool:
        t = _token(node)
        return (t.start_pos or 0) in self.leading or (t.end_pos or 0) in self.trailing

    def parens(self, open_: Node, inner: Node, close: Node) -> DocLike:
        """``(expr)``: the expression breaks inside, the parentheses hug it."""
        return Concat([self.tok(open_), self.p(inner), self.tok(close)])

    def body(self, stmt: Node) -> DocLike:
        """The statement after ``if (…)``, ``else``, ``while (…)`` or ``for (…)``."""
        if is_rule(stmt, "block"):
            return Concat([" ", self.p(stmt)])
        if is_rule(stmt, "empty_stmt"):
            return self.p(stmt)
        return Group(Indent(Concat([LINE, self.p(stmt)])))

    # ----------------------------------------------------------- declarations

    def r_entity_decl(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        brace = next(i for i, k in enumerate(ks) if isinstance(k, Token) and k.type == "LBRACE")
        head = [self.p(k) for k in ks[:brace]]
        return Concat([*_join_space(head), " ", self.block_body(ks[brace], ks[brace + 1:-1],
                                                               ks[-1])])

    def r_realize_decl(self, t: Tree[Token]) -> DocLike:
        kw, lpar, *mid, rpar, block = kids(t)
        params = mid[0] if mid else None
        return Concat([self.tok(kw), self.call_args(lpar, params, rpar),
                       " ", self.p(block)])

    def r_param(self, t: Tree[Token]) -> DocLike:
        return self.spaced(kids(t))

    def r_type_ref(self, t: Tree[Token]) -> DocLike:
        parts: list[DocLike] = []
        for k in kids(t):
            parts.append(self.p(k))
            if isinstance(k, Token) and k.type == "COMMA":
                parts.append(" ")
        return Concat(parts)

    def r_on_handler(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        return Concat([self.spaced(ks[:-1]), " ", self.p(ks[-1])])

    def r_event_name(self, t: Tree[Token]) -> DocLike:
        return Concat([self.p(k) for k in kids(t)])

    # ------------------------------------------------------------- statements

    def r_block(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        return self.block_body(ks[0], ks[1:-1], ks[-1])

    def r_emit_stmt(self, t: Tree[Token]) -> DocLike:
        """``emit a.b x;``: the optional comma before the payload is left out."""
        parts: list[DocLike] = []
        for k in kids(t):
            if isinstance(k, Token) and k.type == "COMMA":
                parts.append(self.comments_only(k))
                continue
            if parts and not (isinstance(k, Token) and k.type == "SEMICOLON"):
                parts.append(" ")
            parts.append(self.p(k))
        return Concat(parts)

    def r_if_stmt(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        kw, lpar, cond, rpar, then = ks[:5]
        else_kw, orelse = (ks[5], ks[6]) if len(ks) >= 7 else (None, None)
        parts: list[DocLike] = [self.tok(kw), " ", self.parens(lpar, cond, rpar),
                                self.body(then)]
        if else_kw is not None and orelse is not None:
            parts.append(" " if is_rule(then, "block") else HARDLINE)
            parts.append(self.tok(else_kw))
            if is_rule(orelse, "if_stmt"):
                parts.extend([" ", self.p(orelse)])
            else:
                parts.append(self.body(orelse))
        return Concat(parts)

    def r_while_stmt(self, t: Tree[Token]) -> DocLike:
        kw, lpar, cond, rpar, body = kids(t)
        return Concat([self.tok(kw), " ", self.parens(lpar, cond, rpar),
                       self.body(body)])

    def r_for_stmt(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        kw, lpar, inner, rpar, body = ks[0], ks[1], ks[2:-2], ks[-2], ks[-1]
        return Concat([self.tok(kw), " ", self.tok(lpar), self.spaced(inner),
                       self.tok(rpar), self.body(body)])

    def r_for_c_stmt(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        kw, lpar, inner, rpar, body = ks[0], ks[1], ks[2:-2], ks[-2], ks[-1]
        parts: list[DocLike] = [self.tok(kw), " ", self.tok(lpar)]
        after_semicolon = False
        for k in inner:
            is_semi = isinstance(k, Token) and k.type == "SEMICOLON"
            if after_semicolon and not is_semi:
                parts.append(" ")
            parts.append(self.p(k))
            after_semicolon = is_semi
        parts.extend([self.tok(rpar), self.body(body)])
        return Concat(parts)

    def r_block_call(self, t: Tree[Token]) -> DocLike:
        name, arg, block = kids(t)
        return Concat([self.p(name), " ", self.p(arg), " ", self.p(block)])

    def r_block_call_expr(self, t: Tree[Token]) -> DocLike:
        name, lbrace, expr, rbrace, block = kids(t)
        cond = Group(Concat([self.tok(lbrace), Indent(Concat([LINE, self.p(expr)])),
                             LINE, self.tok(rbrace)]))
        return Concat([self.p(name), " ", cond, " ", self.p(block)])

    def r_empty_stmt(self, t: Tree[Token]) -> DocLike:
        return Concat([self.p(k) for k in kids(t)])

    # ------------------------------------------------------------ expressions

    def r_assign(self, t: Tree[Token]) -> DocLike:
        target, op, value = kids(t)
        return Concat([self.p(target), " ", self.p(op), " ", self.p(value)])

    def r_conditional(self, t: Tree[Token]) -> DocLike:
        cond, q, then, colon, orelse = kids(t)
        return Group(Concat([self.p(cond), Indent(Concat([
            LINE, self.p(q), " ", self.p(then), LINE, self.p(colon), " ", self.p(orelse)]))]))

    def r_binary(self, t: Tree[Token]) -> DocLike:
        """A chain of operators of one precedence fills lines, breaking before an operator
        when the next operand does not fit."""
        op_type = _token(t.children[1]).type
        chain: list[tuple[Node, Node]] = []
        node: Node = t
        while (isinstance(node, Tree) and node.data == "binary"
               and _token(node.children[1]).type == op_type):
            left, op, right = kids(node)
            chain.append((op, right))
            node = left
        parts: list[DocLike] = [""]
        for op, right in reversed(chain):
            parts.extend([LINE, Concat([self.p(op), " ", self.p(right)])])
        return Concat([self.p(node), Indent(Fill(parts))])

    def r_update(self, t: Tree[Token]) -> DocLike:
        return Concat([self.p(k) for k in kids(t)])

    def r_unary(self, t: Tree[Token]) -> DocLike:
        op, operand = kids(t)
        # `- -x` must not become `--x` (the increment operator).
        gap = str(op) in "+-" and str(first_token(operand))[:1] in "+-"
        return Concat([self.p(op), " " if gap else "", self.p(operand)])

    def r_service_call(self, t: Tree[Token]) -> DocLike:
        name, arg = kids(t)
        return Concat([self.p(name), " ", self.p(arg)])

    def r_member(self, t: Tree[Token]) -> DocLike:
        return Concat([self.p(k) for k in kids(t)])

    r_index = r_member
    r_new_name = r_member

    def r_call(self, t: Tree[Token]) -> DocLike:
        func, lpar, *mid, rpar = kids(t)
        args = mid[0] if mid else None
        return Concat([self.p(func), self.call_args(lpar, args, rpar)])

    def r_new_expr(self, t: Tree[Token]) -> DocLike:
        kw, name, lpar, *mid, rpar = kids(t)
        args = mid[0] if mid else None
        return Concat([self.tok(kw), " ", self.tok(name),
                       self.call_args(lpar, args, rpar)])

    def r_new_object(self, t: Tree[Token]) -> DocLike:
        kw, name, obj = kids(t)
        return Concat([self.p(kw), " ", self.p(name), " ", self.p(obj)])

    def r_object(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        return self.delimited(ks[0], ks[1:-1], ks[-1], spaced=True)

    def r_array(self, t: Tree[Token], spaced: bool = False) -> DocLike:
        ks = kids(t)
        return self.delimited(ks[0], ks[1:-1], ks[-1], spaced=spaced)

    def r_prop(self, t: Tree[Token]) -> DocLike:
        key, colon, value = kids(t)
        handlers = isinstance(key, Token) and str(key) in ("handlers", '"handlers"')
        shown = self.r_array(value, spaced=True) if isinstance(value, Tree) and handlers \
            and value.data == "array" else self.p(value)
        return Concat([self.p(key), self.p(colon), " ", shown])

    def r_event_payload(self, t: Tree[Token]) -> DocLike:
        head, dot, name, obj = kids(t)
        return Concat([self.p(head), self.p(dot), self.p(name), " ", self.p(obj)])

    def r_primary(self, t: Tree[Token]) -> DocLike:
        ks = kids(t)
        if len(ks) == 3 and isinstance(ks[0], Token) and ks[0].type == "LPAR":
            return self.parens(ks[0], ks[1], ks[2])
        return self.spaced(ks)


def _join_space(docs: list[DocLike]) -> list[DocLike]:
    out: list[DocLike] = []
    for d in docs:
        if out:
            out.append(" ")
        out.append(d)
    return out


def print_cst(cst: Cst) -> DocLike:
    """The document for a parsed file."""
    return Printer(cst).document()

