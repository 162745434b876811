"""The CX parser: one lazily built LALR Lark parser that builds the AST directly.

The grammar ships inside the package (``cxpar/grammar/cx.lark`` in a wheel,
``grammar/cx.lark`` in a checkout) and the analysed grammar is cached by Lark, so
start-up stays small. Syntax errors become diagnostics and parsing resumes, so one
file can report several independent errors.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.lexer import PatternStr

from cxpar.ast.nodes import Program
from cxpar.diagnostics.model import Diagnostic, error
from cxpar.span import SourceFile, Span
from cxpar.syntax import errors as syntax_errors
from cxpar.syntax.transform import ToAst

MAX_NESTING = 256
MAX_ERRORS = 50

_OPEN = {"LBRACE": "{", "LPAR": "(", "LSQB": "["}
_CLOSE = {"RBRACE": "LBRACE", "RPAR": "LPAR", "RSQB": "LSQB"}
#: Terminals accepted only where a statement or an entity member may start.
_SYNC = {"EMIT", "ON", "REALIZE"}


def grammar_text() -> str:
    """The text of ``cx.lark``, from the installed package or the source checkout."""
    try:
        return resources.files("cxpar").joinpath("grammar/cx.lark").read_text("utf-8")
    except (FileNotFoundError, OSError):
        here = Path(__file__).resolve().parents[2] / "grammar" / "cx.lark"
        return here.read_text("utf-8")


class OpenComment(Exception):
    """A `/*` with no `*/`: the lexer found `/` where the comment starts."""

    def __init__(self, token: Token) -> None:
        super().__init__("unterminated block comment")
        self.token = token


class _Callbacks:
    """The object Lark looks rule callbacks up on (``getattr(transformer, rule)``)."""

    def __init__(self, builder: ToAst) -> None:
        self._builder = builder

    def __getattr__(self, name: str) -> Any:
        cb = self._builder.callback_for(name)
        if cb is None:
            raise AttributeError(name)
        return cb


class TooDeep(Exception):
    def __init__(self, token: Token) -> None:
        super().__init__("nesting too deep")
        self.token = token


@dataclass
class ParseResult:
    """The program (None if parsing failed outright) and syntax diagnostics."""

    program: Program | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


class _State:
    """Per-parse state shared by the lexer callbacks and the error handler."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.docs: dict[int, str] = {}
        self.open: list[Token] = []
        self.diagnostics: list[Diagnostic] = []
        self.quiet_until = -1
        self.last: Token | None = None


class Parser:
    """Wraps the Lark parser; use :func:`parse`."""

    def __init__(self) -> None:
        self.state: _State | None = None
        self.builder = ToAst("<unknown>")
        callbacks: dict[str, Any] = {"DOC_COMMENT": self._doc}
        for name in _OPEN:
            callbacks[name] = self._open
        for name in _CLOSE:
            callbacks[name] = self._close
        for name in ("SEMICOLON", "NAME", "NUMBER", "STRING"):
            callbacks[name] = self._track
        callbacks["MUL_OP"] = self._slash
        self.lark: Lark = Lark(
            grammar_text(),
            parser="lalr",
            lexer="contextual",
            keep_all_tokens=True,
            maybe_placeholders=True,
            transformer=_Callbacks(self.builder),
            lexer_callbacks=callbacks,
            cache=True,
        )
        self.keywords = {
            t.pattern.value: t.name for t in self.lark.terminals
            if isinstance(t.pattern, PatternStr) and t.pattern.value.isidentifier()
        }

    # ----------------------------------------------------------- lexer callbacks

    def _doc(self, tok: Token) -> Token:
        assert self.state is not None
        self.state.docs[tok.line or 0] = str(tok)[3:].strip()
        return tok

    def _track(self, tok: Token) -> Token:
        assert self.state is not None
        self.state.last = tok
        return tok

    def _slash(self, tok: Token) -> Token:
        # BLOCK_COMMENT is tried first, so a `/` followed by `*` opens a comment with no `*/`.
        assert self.state is not None
        if str(tok) == "/" and self.state.source.text.startswith("*", tok.end_pos or 0):
            raise OpenComment(tok)
        return self._track(tok)

    def _open(self, tok: Token) -> Token:
        assert self.state is not None
        self.state.open.append(tok)
        self.state.last = tok
        if len(self.state.open) > MAX_NESTING:
            raise TooDeep(tok)
        return tok

    def _close(self, tok: Token) -> Token:
        assert self.state is not None
        stack = self.state.open
        want = _CLOSE[tok.type]
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].type == want:
                del stack[i:]
                break
        self.state.last = tok
        return tok

    # -------------------------------------------------------------------- errors

    def _report(self, d: Diagnostic, at: int) -> None:
        assert self.state is not None
        st = self.state
        if at < st.quiet_until or len(st.diagnostics) >= MAX_ERRORS:
            return
        st.diagnostics.append(d)
        st.quiet_until = syntax_errors.resync_offset(st.source.text, at)

    def _on_error(self, e: UnexpectedInput) -> bool:
        assert self.state is not None
        st = self.state
        if len(st.diagnostics) >= MAX_ERRORS:
            return False
        if isinstance(e, UnexpectedCharacters):
            d, skip = syntax_errors.bad_characters(st.source, e)
            pos = e.pos_in_stream or 0
            self._report(d, pos)
            lexer_state = e.interactive_parser.lexer_thread.state
            assert lexer_state is not None
            lexer_state.line_ctr.feed(st.source.text[pos:pos + skip])
            if d.code in ("CX104", "CX105", "CX103") and st.source.text[pos:pos + 1] in "\"'":
                # Stand in a string for the broken one, so the rest of the line parses.
                ip = e.interactive_parser
                if "STRING" in ip.accepts():
                    lc = lexer_state.line_ctr
                    ip.feed_token(Token("STRING", '""', pos, e.line, e.column, lc.line,
                                        lc.column, lc.char_pos))
            return True
        if not isinstance(e, UnexpectedToken):
            return False
        tok = e.token
        if tok.type == "$END":
            if st.open and any(d.span.start >= (st.open[-1].start_pos or 0) for d in st.diagnostics):
                return False
            st.quiet_until = -1
            if not st.open and "SEMICOLON" in e.interactive_parser.accepts():
                self._report(syntax_errors.missing_semicolon(st.source, tok), len(st.source.text))
            else:
                self._report(syntax_errors.unexpected_end(st.source, e, st.open, self.lark),
                             len(st.source.text))
            return False
        ip = e.interactive_parser
        accepts = ip.accepts()
        if "SEMICOLON" in accepts and tok.type != "SEMICOLON":
            probe = ip.copy()
            try:
                probe.feed_token(Token.new_borrow_pos("SEMICOLON", ";", tok))
                fits = tok.type in probe.accepts()
            except UnexpectedInput:
                fits = False
            if fits:
                self._report(syntax_errors.missing_semicolon(st.source, tok), tok.start_pos or 0)
                ip.feed_token(Token.new_borrow_pos("SEMICOLON", ";", tok))
                ip.feed_token(tok)
                return True
        self._report(syntax_errors.unexpected_token(st.source, e, self.lark), tok.start_pos or 0)
        self._unwind(ip)
        if tok.type == "SEMICOLON":
            return True
        tok = self._relex(tok, ip)
        if tok.type in ip.accepts():
            try:
                ip.feed_token(tok)
            except UnexpectedInput:
                pass
        return True

    def _unwind(self, ip: Any) -> None:
        """Pop the parser stack back to a state where a statement or member may start."""
        ps = ip.parser_state
        states = ps.parse_conf.parse_table.states
        while len(ps.state_stack) > 1 and not (_SYNC & states[ps.state_stack[-1]].keys()):
            ps.state_stack.pop()
            if ps.value_stack:
                ps.value_stack.pop()

    def _relex(self, tok: Token, ip: Any) -> Token:
        """A NAME lexed where keywords were not expected may be a keyword after unwinding."""
        if tok.type == "NAME":
            kw = self.keywords.get(str(tok))
            if kw is not None and kw in ip.accepts():
                return Token.new_borrow_pos(kw, str(tok), tok)
        return tok

    # --------------------------------------------------------------------- parse

    def parse(self, source: SourceFile) -> ParseResult:
        self.state = st = _State(source)
        self.builder.file = source.name
        self.builder.docs = st.docs
        self.builder.text = source.text
        self.builder.problems = []
        program: Any = None
        try:
            try:
                program = self.lark.parse(source.text, on_error=self._on_error)
            except (TypeError, AttributeError, IndexError, StopIteration):
                # A callback saw a partial tree left by error recovery.
                if not st.diagnostics:
                    raise
                program = None
        except OpenComment as exc:
            t = exc.token
            at = t.start_pos or 0
            st.diagnostics.append(error(
                "CX106", "unterminated block comment",
                Span(source.name, t.line or 1, t.column or 1, t.line or 1, (t.column or 1) + 2,
                     at, at + 2),
                label="this comment is never closed", help="close it with `*/`"))
        except TooDeep as exc:
            st.diagnostics.append(syntax_errors.too_deep(source, exc.token, MAX_NESTING))
        except UnexpectedInput as exc:
            if not st.diagnostics:
                st.diagnostics.append(syntax_errors.generic(source, exc))
        except RecursionError:
            st.diagnostics.append(error("CX108", "program nested too deeply to parse",
                                        Span(source.name, 1, 1, 1, 1)))
        st.diagnostics.extend(self.builder.problems)
        if st.diagnostics:
            st.diagnostics.sort(key=lambda d: (d.span.start, d.span.line, d.span.col))
        if not isinstance(program, Program):
            program = None
        self.state = None
        return ParseResult(program, st.diagnostics)


_PARSER: Parser | None = None


def get_parser() -> Parser:
    """The shared parser, built (or loaded from Lark's cache) on first use."""
    global _PARSER
    if _PARSER is None:
        _PARSER = Parser()
    return _PARSER


def parse(source: SourceFile) -> ParseResult:
    """Parse CX source into an AST plus syntax diagnostics."""
    limit = sys.getrecursionlimit()
    if limit < 20000:
        sys.setrecursionlimit(20000)
    return get_parser().parse(source)


def parse_text(text: str, name: str = "<input>") -> ParseResult:
    """Parse a string (tests, the REPL)."""
    return parse(SourceFile(name, text))
