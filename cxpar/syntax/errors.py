"""Turn Lark's parse errors into diagnostics a CX user understands.

Expected tokens are shown as they are written (`;`, `)`), never as terminal names,
and a table of common mistakes adds hints (missing `;`, unclosed `{`, `#` comments,
single-quoted strings).
"""

from __future__ import annotations

import re

from lark import Lark, Token
from lark.exceptions import UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from cxpar.diagnostics.habits import emit_value
from cxpar.diagnostics.model import Diagnostic, Label, error
from cxpar.span import SourceFile, Span
from cxpar.syntax import foreign

_WORDS = {
    "NAME": "an identifier",
    "NUMBER": "a number",
    "STRING": "a string",
    "ASSIGN_OP": "`=`",
    "ADD_OP": "`+`",
    "MUL_OP": "`*`",
    "REL_OP": "`<`",
    "EQ_OP": "`==`",
    "UNARY_OP": "`!`",
    "CONSCIOUS": "`conscious`",
    "OBJECT": "`object`",
    "ARRAY_SUFFIX": "`[]`",
    "$END": "end of file",
}

_EXPR_START = {"NAME", "NUMBER", "STRING"}
_STMT_START = {"VAR", "EMIT", "IF", "WHILE", "FOR", "RETURN"}
_OPERATORS = {"ADD_OP", "MUL_OP", "REL_OP", "EQ_OP", "AND_OP", "OR_OP", "ASSIGN_OP", "DOT",
              "LSQB", "LPAR"}


def _span_at(source: SourceFile, pos: int, length: int = 1) -> Span:
    text = source.text
    pos = max(0, min(pos, len(text)))
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    end = min(pos + length, len(text))
    if "\n" in text[pos:end]:
        end = text.index("\n", pos)
    end = max(end, pos)
    end_col = col + (end - pos) if end > pos else col + 1
    return Span(source.name, line, col, line, end_col, pos, max(end, pos + 1))


def token_span(source: SourceFile, tok: Token) -> Span:
    """The span of a Lark token (end of file for ``$END``)."""
    if tok.type == "$END" or tok.start_pos is None:
        return end_span(source)
    return Span(source.name, tok.line or 1, tok.column or 1, tok.end_line or tok.line or 1,
                tok.end_column or (tok.column or 1) + 1, tok.start_pos, tok.end_pos or 0)


def end_span(source: SourceFile) -> Span:
    """A one-column span just after the last character of the file."""
    text = source.text.rstrip("\n") if source.text.strip() else source.text
    pos = len(text)
    line = text.count("\n") + 1
    col = pos - (text.rfind("\n") + 1) + 1
    return Span(source.name, line, col, line, col + 1, pos, pos)


def describe_token(tok: Token) -> str:
    """How a found token is named in a message: `foo`, end of file, a string."""
    if tok.type == "$END":
        return "end of file"
    if tok.type == "STRING":
        text = str(tok)
        return "string " + (text if len(text) <= 24 else text[:20] + '..."')
    return f"`{tok}`"


def describe_expected(names: set[str], lark: Lark | None) -> str:
    """The expected terminals in words, grouping long lists."""
    names = {n for n in names if n not in ("DOC_COMMENT", "LINE_COMMENT", "BLOCK_COMMENT", "WS",
                                           "HASH_COMMENT", "INCDEC")}
    words: list[str] = []
    if _EXPR_START <= names:
        words.append("an expression")
        names -= _EXPR_START | {"LSQB", "LPAR", "LBRACE", "UNARY_OP", "ADD_OP", "NEW", "THIS",
                                "TRUE", "FALSE", "NULL"}
    if _STMT_START <= names:
        words.insert(0, "a statement")
        names -= _STMT_START | {"WHILE", "BREAK", "CONTINUE", "SEMICOLON", "LBRACE", "ON",
                                "CONSCIOUS", "OBJECT", "RBRACE"} - {"RBRACE"}
    if len(names & _OPERATORS) >= 4:
        words.append("an operator")
        names -= _OPERATORS | {"AND_OP", "OR_OP"}
    for name in sorted(names, key=_order):
        words.append(_word(name, lark))
    words = list(dict.fromkeys(words))
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _order(name: str) -> tuple[int, str]:
    first = ["SEMICOLON", "COMMA", "RPAR", "RBRACE", "RSQB", "COLON"]
    return (first.index(name) if name in first else len(first), name)


def _word(name: str, lark: Lark | None) -> str:
    if name in _WORDS:
        return _WORDS[name]
    if lark is not None:
        try:
            pattern = lark.get_terminal(name).pattern
            if isinstance(pattern, PatternStr):
                return f"`{pattern.value}`"
        except KeyError:
            pass
    return name.lower()


def resync_offset(text: str, pos: int) -> int:
    """Where error reporting resumes after an error at ``pos``: past the next `;` or `}`."""
    i = pos
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in ";}":
            return i
        if ch == '"':
            j = text.find('"', i + 1)
            nl = text.find("\n", i + 1)
            if j == -1 or (nl != -1 and nl < j):
                i = nl if nl != -1 else n
                continue
            i = j
        i += 1
    return n + 1


def _previous_code_end(text: str, pos: int) -> int:
    """Offset just after the last code character before ``pos`` (skips blanks and // comments)."""
    i = pos
    while i > 0:
        line_start = text.rfind("\n", 0, i) + 1
        line = text[line_start:i]
        cut = _comment_start(line)
        code = line[:cut].rstrip()
        if code:
            return line_start + len(code)
        i = line_start - 1
    return 0


def _comment_start(line: str) -> int:
    in_str = False
    k = 0
    while k < len(line):
        ch = line[k]
        if in_str:
            if ch == "\\":
                k += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif line.startswith("//", k):
            return k
        k += 1
    return len(line)


#: Words of other languages named in a syntax error near them (where they start a
#: statement, the parser reports the whole construct instead: CX120, ``foreign.py``).
_FOREIGN = {w: f"CX has no `{w}`: {foreign.WORDS[w][0]}"
            for w in ("function", "class", "def", "fn", "func", "foreach")}

#: `on` or `emit` right before an event name (`on async` too).
_EVENT_KEYWORD = re.compile(r"(?:^|[\s;{}])(?:on(?:\s+async)?|emit)\s*\Z")
_WORDS_BEFORE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_STRINGS = re.compile(r'"(?:[^"\\\n]|\\.)*"?')


def _foreign_before(text: str, pos: int) -> str | None:
    """A word of another language among the last three words before ``pos`` on its
    line (not in strings)."""
    line = _STRINGS.sub('""', text[text.rfind("\n", 0, pos) + 1:pos])
    words = _WORDS_BEFORE.findall(line)[-3:]
    return next((w for w in words if w in _FOREIGN), None)


_EMIT_VALUE = re.compile(r"(?:[=(,:?]|\breturn|&&|\|\|)\s*(emit)\s+[A-Za-z_$]")


def habit(source: SourceFile, tok: Token) -> Diagnostic | None:
    """A syntax error that comes from a habit of another language, with the fix: ``emit``
    used as a value (CX118). (``let``/``const`` parse like ``var`` and ``===``/``!==``
    like ``==``/``!=``; ToAst reports CX116 and CX117.)"""
    text = source.text
    at = tok.start_pos if tok.start_pos is not None and tok.type != "$END" else len(text)
    # the statement so far: after the last `;`, `{` or `}` (found backwards: a regex
    # search for the longest tail without them is quadratic in a long stretch of code
    # or blanks without them)
    begin = max(text.rfind(";", 0, at), text.rfind("{", 0, at), text.rfind("}", 0, at)) + 1
    head = text[begin:at]
    uses = list(_EMIT_VALUE.finditer(head))
    if uses:
        m = uses[-1]
        start = begin + m.start(1)
        return emit_value(_span_at(source, start, 4))
    return None


def missing_semicolon(source: SourceFile, tok: Token) -> Diagnostic:
    """``expected `;`, found X`` with the place where the `;` belongs."""
    return missing_separator(source, tok, ";")


def missing_separator(source: SourceFile, tok: Token, sep: str) -> Diagnostic:
    """``expected `;`, found X`` (CX102) or ``expected `,`, found X`` (CX115), with the
    place where it belongs."""
    hint = habit(source, tok)
    if hint is not None:
        return hint
    found = token_span(source, tok)
    end = _previous_code_end(source.text, found.start if tok.type != "$END" else len(source.text))
    after = _span_at(source, end, 1)
    word = source.text[:end].split()[-1][-12:] if source.text[:end].split() else ""
    labels = (Label(after, f"add `{sep}` here"),) if after.line != found.line else ()
    word_before = _foreign_before(source.text, found.start)
    if word_before is not None:
        return error("CX101", f"unexpected {describe_token(tok)} after `{word_before}`", found,
                     label="unexpected " + describe_token(tok), help=_FOREIGN[word_before])
    code = "CX102" if sep == ";" else "CX115"
    return error(
        code, f"expected `{sep}`, found {describe_token(tok)}", found,
        label="unexpected " + describe_token(tok), labels=labels,
        help=f"add `{sep}` after `{word}` on line {after.line}" if word else f"add `{sep}`")


def more_errors(span: Span, count: int) -> Diagnostic:
    """CX109: the errors past the reporting limit, counted."""
    return error("CX109", f"and {count} more syntax error{'s' if count != 1 else ''}", span,
                 label="the first one not shown is here",
                 help="fix the errors above first; the rest often follow from them")


def unexpected_token(source: SourceFile, e: UnexpectedToken, lark: Lark | None) -> Diagnostic:
    tok = e.token
    hint = habit(source, tok)
    if hint is not None:
        return hint
    expected = describe_expected(set(e.expected or ()), lark)
    help_text = None
    if tok.type == "RBRACE":
        help_text = "this `}` closes a block early, or something before it is incomplete"
    elif tok.type in ("NAME",) and str(tok) in _FOREIGN:
        help_text = _FOREIGN[str(tok)]
    elif tok.type == "STRING" and _EVENT_KEYWORD.search(
            source.text, max(0, (tok.start_pos or 0) - 40), tok.start_pos or 0):
        name = str(tok)[1:-1]
        help_text = f"event names are written without quotes: `{name}`"
    elif tok.type == "COLON" and {"COMMA", "RPAR"} <= set(e.expected or ()):
        help_text = ("CX calls have no named arguments (`f(x, name: v)`); builtins take "
                     "plain values, and a service takes one object: `think { prompt: x, "
                     "name: v }`")
    return error("CX101", f"expected {expected}, found {describe_token(tok)}",
                 token_span(source, tok), label="unexpected " + describe_token(tok),
                 help=help_text)


def unexpected_end(source: SourceFile, e: UnexpectedToken, open_: list[Token],
                   lark: Lark | None = None) -> Diagnostic:
    if open_:
        tok = open_[-1]
        closer = {"LBRACE": "}", "LPAR": ")", "LSQB": "]"}[tok.type]
        return error("CX107", f"unclosed `{tok}`: the file ended before its `{closer}`",
                     token_span(source, tok), label="this delimiter is never closed",
                     labels=(Label(end_span(source), "file ends here"),),
                     help=f"add `{closer}` where the block or list ends")
    expected = describe_expected(set(e.expected or ()), lark)
    return error("CX101", f"unexpected end of file, expected {expected}", end_span(source),
                 label="file ends here")


#: Characters that can start some CX token (or whitespace, or a comment).
_TOKEN_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$"
                         " \t\n\r\f\ufeff\"'/#{}()[];,.:=!<>+-*%&|?")


def bad_run_length(text: str, pos: int) -> int:
    """How many characters to skip for a lexer error at ``pos``: an unterminated string
    to the end of its line, an open comment to the end of the file, a single-quoted
    string to its closing quote, else the run of characters that start no token."""
    ch = text[pos:pos + 1]
    if ch == '"':
        eol = text.find("\n", pos)
        return (len(text) if eol == -1 else eol) - pos
    if text.startswith("/*", pos):
        return len(text) - pos
    if ch in "'`":
        eol = text.find("\n", pos)
        j = text.find(ch, pos + 1, len(text) if eol == -1 else eol)
        return (j - pos + 1) if j != -1 else 1
    end = pos + 1
    n = len(text)
    while True:  # the run, including blanks between bad characters on the same line
        while end < n and text[end] not in _TOKEN_START:
            end += 1
        j = end
        while j < n and text[j] in " \t":
            j += 1
        if j < n and j > end and text[j] not in _TOKEN_START:
            end = j
            continue
        return end - pos


def bad_characters(source: SourceFile, pos: int, skip: int) -> Diagnostic:
    """The diagnostic for the ``skip`` characters at ``pos`` that no token matches."""
    text = source.text
    ch = text[pos] if pos < len(text) else ""
    if ch == '"':
        return _bad_string(source, pos, pos + skip)
    if text.startswith("/*", pos):
        return error("CX106", "unterminated block comment", _span_at(source, pos, 2),
                     label="this comment is never closed", help="close it with `*/`")
    if ch == "'":
        return error("CX103", "strings use double quotes", _span_at(source, pos, skip),
                     label="single-quoted string", help='write "text" instead of \'text\'')
    if ch == "`" and skip > 1:
        return error("CX103", "CX has no template strings", _span_at(source, pos, skip),
                     label="template string",
                     help='write a "double-quoted" string and join values with `+`: '
                          '`"n is " + n`')
    run = text[pos:pos + skip]
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in run[:12])
    if len(run) > 12:
        shown += "…"
    what = "character" if len(run) == 1 else "characters"
    quoted = f"`` {shown} ``" if "`" in shown else f"`{shown}`"
    return error("CX103", f"unexpected {what} {quoted}", _span_at(source, pos, skip),
                 label="not a CX token")


def _bad_string(source: SourceFile, pos: int, eol: int) -> Diagnostic:
    """A string the lexer could not match: it has no closing `"` on its line (a backslash
    may precede any character but a line break, rule 31)."""
    return error("CX104", "unterminated string", _span_at(source, pos, max(eol - pos, 1)),
                 label="this string is never closed",
                 help='close it with `"` on the same line (use `\\n` for a line break)')


def too_deep(source: SourceFile, tok: Token, limit: int) -> Diagnostic:
    return error("CX108", f"nesting too deep (more than {limit} levels)", token_span(source, tok),
                 label="the limit is reached here", help="flatten the program")


def generic(source: SourceFile, e: UnexpectedInput) -> Diagnostic:
    if isinstance(e, UnexpectedToken):
        return unexpected_token(source, e, None)
    pos = getattr(e, "pos_in_stream", 0) or 0
    return error("CX101", "syntax error", _span_at(source, pos))
