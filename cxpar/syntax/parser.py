"""The CX parser: one lazily built LALR Lark parser that builds the AST directly.

The grammar ships inside the package (``cxpar/grammar/cx.lark`` in a wheel,
``grammar/cx.lark`` in a checkout) and the analysed grammar is cached by Lark, so
start-up stays small. Syntax errors become diagnostics and parsing resumes, so one
file can report several independent errors.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedInput,
    UnexpectedToken,
)
from lark.lexer import PatternStr
from lark.parsers.lalr_analysis import Shift

from cxpar.ast.nodes import Program
from cxpar.diagnostics.model import Diagnostic, error
from cxpar.span import SourceFile, Span
from cxpar.syntax import errors as syntax_errors
from cxpar.syntax import foreign
from cxpar.syntax.transform import ToAst

MAX_NESTING = 256
#: Syntax errors reported per file; the rest are counted ("and N more", CX109).
MAX_ERRORS = 100

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


class _NotHere(UnexpectedToken):
    """Raised (one shared instance) when the parser state has no action for a token."""

    def __init__(self) -> None:  # noqa: D107 - none of UnexpectedToken's fields
        Exception.__init__(self, "no action")


_NOT_HERE = _NotHere()
_BLANKS = re.compile(r"[ \t\f\r\n\ufeff]*")


class _Resync(Exception):  # noqa: N818 - a signal, not an error
    """Raised by :meth:`Parser._drive` at a resume point where the parser has recovered:
    every item before it is complete and nothing is left open."""

    def __init__(self, items: list[Any], at: int) -> None:
        super().__init__("resynchronised")
        self.items = items
        self.at = at


class TooDeep(Exception):
    def __init__(self, token: Token) -> None:
        super().__init__("nesting too deep")
        self.token = token


@dataclass
class ParseResult:
    """The program (None if parsing failed outright) and syntax diagnostics."""

    program: Program | None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Set when parsing stopped early at one of the ``resume_at`` offsets given to
    #: :meth:`Parser.parse` (the program then holds the items before it).
    stopped_at: int | None = None

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
        self.reported = 0
        self.more = 0
        self.first_unreported: Span | None = None
        #: The foreign constructs (`try`, `function`, ...), found at the first error.
        self.foreign: foreign.Regions | None = None
        self.foreign_reported: set[int] = set()
        #: Where the text the last reported error swallowed ends (an unterminated
        #: string, a foreign construct): what the file lacks after it is a follow-on.
        self.swallowed_to: int | None = None


class Parser:
    """Wraps the Lark parser; use :func:`parse`."""

    def __init__(self) -> None:
        self.state: _State | None = None
        self.resume_at: frozenset[int] = frozenset()
        self.resume_open = 0
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
    #
    # Recovery must stay linear (issue 14: 200 KB of `)` once took minutes): a follow-on
    # error inside a region already reported costs a table lookup, never a copy of the
    # parser (Lark's ``accepts()`` copies it once per terminal), and diagnostics are
    # built only for errors that are reported.

    def _fits(self, ps: Any, types: tuple[str, ...]) -> bool:
        """Whether the parser in state ``ps`` would shift these terminals in turn.

        Simulates the LALR actions on a copy of the state stack only: no values, no
        callbacks, no lexer (exact, and cheap).
        """
        states = ps.parse_conf.parse_table.states
        stack = list(ps.state_stack)
        for t in types:
            while True:
                action = states[stack[-1]].get(t)
                if action is None:
                    return False
                kind, arg = action
                if kind is Shift:
                    stack.append(arg)
                    break
                size = len(arg.expansion)
                if size:
                    del stack[-size:]
                stack.append(states[stack[-1]][arg.origin.name][1])
        return True

    def _reportable(self, at: int) -> bool:
        """Whether an error at offset ``at`` is reported (not a follow-on error)."""
        assert self.state is not None
        return at >= self.state.quiet_until

    def _report(self, d: Diagnostic | Callable[[], Diagnostic], at: int) -> None:
        """Report ``d`` (or what ``d()`` builds) unless it follows one already reported;
        past :data:`MAX_ERRORS` only count it (the diagnostic is built for the first)."""
        assert self.state is not None
        st = self.state
        if at < st.quiet_until:
            return
        if st.reported >= MAX_ERRORS:
            st.more += 1
            if st.more == 1:
                st.first_unreported = (d if isinstance(d, Diagnostic) else d()).span
        else:
            st.diagnostics.append(d if isinstance(d, Diagnostic) else d())
            st.reported += 1
        st.quiet_until = syntax_errors.resync_offset(st.source.text, at)
        last = st.diagnostics[-1] if st.diagnostics else None
        st.swallowed_to = last.span.end if last is not None and last.code == "CX104" else None

    def _skip_construct(self, ip: Any, at: int) -> bool:
        """If the error at ``at`` is inside a construct from another language (`try`,
        `function`, `class` ...), report it once (CX120) and parse on after its end as
        if it were not there: no follow-on errors from its body or braces."""
        assert self.state is not None
        st = self.state
        if st.foreign is None:
            st.foreign = foreign.Regions(st.source.text)
        construct = st.foreign.at(at)
        if construct is None:
            return False
        if construct.start not in st.foreign_reported:
            st.foreign_reported.add(construct.start)
            self._report(foreign.diagnostic(st.source, construct), at)
        st.quiet_until = st.swallowed_to = construct.end
        self._unwind(ip.parser_state)
        st.open = [t for t in st.open if (t.start_pos or 0) < construct.start]
        lc = ip.lexer_thread.state.line_ctr
        if lc.char_pos < construct.end:
            lc.feed(st.source.text[lc.char_pos:construct.end])
        return True

    def _on_error(self, e: UnexpectedInput) -> bool:
        assert self.state is not None
        st = self.state
        ip = e.interactive_parser
        if isinstance(e, UnexpectedCharacters):
            self._bad_characters(e.pos_in_stream or 0, e.line, e.column, ip)
            self._drive(ip)
            return True
        if not isinstance(e, UnexpectedToken):
            return False
        tok = e.token
        if tok.type == "$END":
            ps = ip.parser_state
            if st.open and any(d.span.start >= (st.open[-1].start_pos or 0)
                               for d in st.diagnostics):
                return False
            if self._swallowed_to_end():
                return False  # the `;`, `)` ... it lacks were eaten by a string left open
            st.quiet_until = -1
            if not st.open and self._fits(ps, ("SEMICOLON",)):
                self._report(syntax_errors.missing_semicolon(st.source, tok), len(st.source.text))
            else:
                self._report(syntax_errors.unexpected_end(st.source, e, st.open, self.lark),
                             len(st.source.text))
            return False
        self._recover(tok, ip)
        self._drive(ip)
        return True

    def _swallowed_to_end(self) -> bool:
        """Whether the last error reported swallowed the text up to the end of the code
        (an unterminated string, a foreign construct): what the file then lacks at its
        end is a follow-on error."""
        assert self.state is not None
        st = self.state
        if st.swallowed_to is None:
            return False
        rest = st.source.text[st.swallowed_to:]
        return all(not line.strip() or line.lstrip().startswith(("//", "#"))
                   for line in rest.split("\n"))

    def _recover(self, tok: Token, ip: Any) -> bool:
        """Handle one token the parser cannot shift; True if parsing can go on with it.

        A missing `;` between statements or `,` between items (object properties,
        arguments, array items) is inserted, with no cascade. Otherwise the error is
        reported (unless it follows one already reported), the parser unwinds to where a
        statement may start, and the token is fed if it fits there.
        """
        assert self.state is not None
        st = self.state
        ps = ip.parser_state
        at = tok.start_pos or 0
        if self._skip_construct(ip, at):
            return False
        if tok.type not in ("SEMICOLON", "COMMA"):
            # `,` only for a reported error: after one (an unterminated string that ate a
            # `)`) the next line is better parsed as a new statement.
            seps = (("SEMICOLON", ";"), ("COMMA", ",")) if self._reportable(at) else \
                (("SEMICOLON", ";"),)
            for sep, mark in seps:
                if self._fits(ps, (sep, tok.type)):
                    if self._reportable(at):
                        self._report(lambda m=mark: syntax_errors.missing_separator(
                            st.source, tok, m), at)  # type: ignore[misc]
                    ip.feed_token(Token.new_borrow_pos(sep, mark, tok))
                    ip.feed_token(tok)
                    return True
        if self._reportable(at):
            expected = {t for t in ps.parse_conf.parse_table.states[ps.position] if t.isupper()}
            self._report(lambda: syntax_errors.unexpected_token(
                st.source, UnexpectedToken(tok, expected), self.lark), at)
        self._unwind(ps)
        if tok.type == "SEMICOLON":
            return False
        tok = self._relex(tok, ps)
        if self._fits(ps, (tok.type,)):
            ip.feed_token(tok)
            return True
        return False

    def _drive(self, ip: Any) -> None:
        """After the first error, parse the rest of the file here, recovering inline.

        The same lexer (the parser state's, else the root lexer's, as Lark's contextual
        lexer does) and the same LALR steps as Lark's loop, without its resume-on-error
        cycle per error (an exception, a new lexer generator and an interactive parser
        each), and a token already found unusable in an unchanged parser state is
        dropped at once: recovery stays linear and cheap (issue 14). At the end of the
        input Lark resumes and feeds ``$END``.
        """
        assert self.state is not None
        st = self.state
        lexer = ip.lexer_thread.lexer
        lstate = ip.lexer_thread.state
        ps = ip.parser_state
        lexers = lexer.lexers
        root = lexer.root_lexer
        states = ps.parse_conf.parse_table.states
        dead: set[tuple[int, str]] = set()  # (state, terminal) known to be dropped there
        while True:
            try:
                tok = self._next_token(lexers[ps.position], lstate, ps) or \
                    self._next_token(root, lstate, ps) or \
                    root.next_token(lstate, ps)  # (raises: no token, or the end)
            except EOFError:
                return
            except UnexpectedCharacters as ce:
                self._bad_characters(ce.pos_in_stream or 0, ce.line, ce.column, ip)
                continue
            state = ps.position
            if (state, tok.type) in dead:  # dropped like the last one (state unchanged)
                at = tok.start_pos or 0
                if not self._reportable(at):
                    continue  # a follow-on error
                if st.reported >= MAX_ERRORS:  # past the cap: only counted
                    if not st.more:
                        st.first_unreported = syntax_errors.token_span(st.source, tok)
                    st.more += 1
                    st.quiet_until = syntax_errors.resync_offset(st.source.text, at)
                    continue
            try:
                if tok.type not in states[state]:
                    raise _NOT_HERE  # (the common error, without building Lark's exception)
                ps.feed_token(tok)
            except UnexpectedToken:
                if not self._recover(tok, ip) and ps.position == state:
                    dead.add((state, tok.type))
                else:
                    dead.clear()
            else:
                if dead:
                    dead.clear()
                if self.resume_at and tok.start_pos in self.resume_at \
                        and len(st.open) <= self.resume_open:
                    self._resync(ps, tok)

    def _resync(self, ps: Any, tok: Token) -> None:
        """Stop (:class:`_Resync`) if ``tok``, just shifted, was shifted right after the
        list of complete top-level items and lexed as at the start of a file."""
        stack = ps.state_stack
        table = ps.parse_conf.parse_table
        start = table.start_states["start"]
        items = table.states[start].get("__start_star_0")
        if len(stack) != 3 or stack[0] != start or items is None or stack[1] != items[1]:
            return
        if tok.type == "NAME" and self.keywords.get(str(tok)) in table.states[start]:
            return  # the start of a file would read this word as a keyword
        done = ps.value_stack[0]
        raise _Resync(list(done.children) if isinstance(done, Tree) else [done],
                      tok.start_pos or 0)

    @staticmethod
    def _next_token(lx: Any, lstate: Any, ps: Any) -> Token | None:
        """The next token by lexer ``lx`` (the state's, else the root one for a token of
        another context) as its ``next_token`` makes it, or None if it matches nothing
        there; one regex match per token (blanks skipped by hand, no exception)."""
        lc = lstate.line_ctr
        raw = lstate.text.text
        pos = lc.char_pos
        at = _BLANKS.match(raw, pos).end()  # type: ignore[union-attr]
        if at != pos:
            lc.feed(raw[pos:at])
        m = lx.match(lstate.text, at)
        if m is None:
            return None
        value, type_ = m
        if type_ in lx.ignore_types:  # a comment: Lark's own loop skips it
            return lx.next_token(lstate, ps)  # type: ignore[no-any-return]
        tok = Token(type_, value, at, lc.line, lc.column)
        lc.feed(value, type_ in lx.newline_types)
        tok.end_line, tok.end_column, tok.end_pos = lc.line, lc.column, lc.char_pos
        cb = lx.callback.get(type_)
        if cb is not None:
            tok = cb(tok)
        lstate.last_token = tok
        return tok

    def _bad_characters(self, pos: int, line: int, column: int, ip: Any) -> None:
        """Characters no token matches: skip the run of them (one error for the run)."""
        assert self.state is not None
        st = self.state
        text = st.source.text
        if self._skip_construct(ip, pos):
            return
        skip = syntax_errors.bad_run_length(text, pos)
        if self._reportable(pos):
            self._report(lambda: syntax_errors.bad_characters(st.source, pos, skip), pos)
        lexer_state = ip.lexer_thread.state
        assert lexer_state is not None
        lexer_state.line_ctr.feed(text[pos:pos + skip])
        if (text[pos:pos + 1] in ("\"", "'") or text[pos:pos + 1] == "`" and skip > 1) \
                and self._fits(ip.parser_state, ("STRING",)):
            # Stand in a string for the broken one, so the rest of the line parses.
            lc = lexer_state.line_ctr
            ip.feed_token(Token("STRING", '""', pos, line, column, lc.line, lc.column,
                                lc.char_pos))

    def _unwind(self, ps: Any) -> None:
        """Pop the parser stack back to a state where a statement or member may start."""
        states = ps.parse_conf.parse_table.states
        while len(ps.state_stack) > 1 and not (_SYNC & states[ps.state_stack[-1]].keys()):
            ps.state_stack.pop()
            if ps.value_stack:
                ps.value_stack.pop()

    def _relex(self, tok: Token, ps: Any) -> Token:
        """A NAME lexed where keywords were not expected may be a keyword after unwinding."""
        if tok.type == "NAME":
            kw = self.keywords.get(str(tok))
            if kw is not None and self._fits(ps, (kw,)):
                return Token.new_borrow_pos(kw, str(tok), tok)
        return tok

    # --------------------------------------------------------------------- parse

    def parse(self, source: SourceFile, resume_at: frozenset[int] = frozenset(),
              resume_open: int = 0) -> ParseResult:
        """Parse ``source``. ``resume_at``: offsets of item starts after which the rest of
        the text is known to parse, on its own, without errors (the incremental parser's
        unchanged chunks); after an error, parsing stops at the first of them where the
        parser has recovered to the top level, since from there the whole-file parse
        would build exactly what parsing the rest on its own builds. Brackets left open
        by the error only count towards :data:`MAX_NESTING` in the rest, so at most
        ``resume_open`` of them may be (the room the rest's own nesting leaves)."""
        self.state = st = _State(source)
        self.resume_at = resume_at
        self.resume_open = resume_open
        self.builder.file = source.name
        self.builder.docs = st.docs
        self.builder.text = source.text
        self.builder.problems = []
        program: Any = None
        stopped_at: int | None = None
        try:
            try:
                program = self.lark.parse(source.text, on_error=self._on_error)
            except (TypeError, AttributeError, IndexError, StopIteration):
                # A callback saw a partial tree left by error recovery.
                if not st.diagnostics:
                    raise
                program = None
            except _Resync as stop:
                stopped_at = stop.at
                build = self.builder.callback_for("start")
                assert build is not None
                program = build(stop.items)  # as the end of the input would build it
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
        if st.more and st.first_unreported is not None:
            st.diagnostics.append(syntax_errors.more_errors(st.first_unreported, st.more))
        if st.diagnostics:
            st.diagnostics.sort(key=lambda d: (d.span.start, d.span.line, d.span.col))
        if not isinstance(program, Program):
            program = None
        self.state = None
        return ParseResult(program, st.diagnostics, stopped_at)


_PARSER: Parser | None = None
_NOT_AT_START: frozenset[str] | None = None


def keywords_not_at_item_start() -> frozenset[str]:
    """Keywords the parser cannot take where a top-level item starts (``else``,
    ``realize`` ...). The contextual lexer reads such a word as a name at the start of a
    file, but as the keyword after an item that a member or an ``else`` may follow."""
    global _NOT_AT_START
    if _NOT_AT_START is None:
        parser = get_parser()
        table = parser.lark.parser.parser.parser.parse_table
        accepted = table.states[table.start_states["start"]].keys()
        _NOT_AT_START = frozenset(w for w, t in parser.keywords.items() if t not in accepted)
    return _NOT_AT_START


def get_parser() -> Parser:
    """The shared parser, built (or loaded from Lark's cache) on first use."""
    global _PARSER
    if _PARSER is None:
        _PARSER = Parser()
    return _PARSER


def parse(source: SourceFile, resume_at: frozenset[int] = frozenset(),
          resume_open: int = 0) -> ParseResult:
    """Parse CX source into an AST plus syntax diagnostics (``resume_at``, ``resume_open``:
    see :meth:`Parser.parse`)."""
    limit = sys.getrecursionlimit()
    if limit < 20000:
        sys.setrecursionlimit(20000)
    return get_parser().parse(source, resume_at, resume_open)


def parse_text(text: str, name: str = "<input>") -> ParseResult:
    """Parse a string (tests, the REPL)."""
    return parse(SourceFile(name, text))
