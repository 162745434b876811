"""A pygments lexer for CX (entry point ``cx`` under ``pygments.lexers``).

Used by the REPL for highlighting; docs and other tools get it with
``pygments.lexers.get_lexer_by_name("cx")``.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Text,
    Whitespace,
)

from cxpar.lang import RESERVED_PROPS

__all__ = ["CxLexer", "KEYWORDS", "SERVICES", "BUILTINS"]

#: Reserved words of CX (and cxpar's additions).
KEYWORDS = ("conscious", "object", "extends", "realize", "on", "async", "emit", "var", "if",
            "else", "while", "for", "in", "break", "continue", "return", "new")
CONSTANTS = ("true", "false", "null")
#: Built-in services (contextual: a service name followed by an expression).
SERVICES = ("think", "infer", "learn", "adapt", "execute", "await", "iam", "is", "not")
BUILTINS = ("print", "len", "str", "num", "keys", "now", "random")
#: Reserved props of a service call.
RESERVED = RESERVED_PROPS

_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"
_DOTTED = _IDENT + r"(?:\s*\.\s*" + _IDENT + r")*"


class CxLexer(RegexLexer):
    """CX: event-driven orchestration of AI services (cxpar)."""

    name = "CX"
    aliases = ["cx", "cxpar"]
    filenames = ["*.cx"]
    mimetypes = ["text/x-cx"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"///[^\n]*", String.Doc),
            (r"//[^\n]*", Comment.Single),
            (r"/\*", Comment.Multiline, "comment"),
            # Declarations: `conscious Name : Base`, `object Name extends Base`.
            (r"(conscious|object)(\s+)(" + _IDENT + ")",
             bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"(extends)(\s+)(" + _IDENT + ")", bygroups(Keyword, Whitespace, Name.Class)),
            (r"(new)(\s+)(" + _IDENT + ")", bygroups(Keyword, Whitespace, Name.Class)),
            # Handlers and emits: the event name is a label.
            (r"(on)(\s+)(?:(async)(\s+))?(" + _DOTTED + ")",
             bygroups(Keyword, Whitespace, Keyword, Whitespace, Name.Label)),
            (r"(emit)(\s+)(" + _DOTTED + ")", bygroups(Keyword, Whitespace, Name.Label)),
            (r"(realize)(\s*)(?=\()", bygroups(Keyword, Text)),
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (r"(this|self)\b", Name.Builtin.Pseudo),
            # A service name followed by something other than `(`, `.`, `=`, `;`, `,`.
            (words(SERVICES, suffix=r"\b(?=\s*[^\s(.=;,):\]])"), Name.Function.Magic),
            (words(BUILTINS, suffix=r"\b(?=\s*\()"), Name.Builtin),
            (words(RESERVED, suffix=r"\b(?=\s*:)"), Keyword.Pseudo),
            (r'"', String.Double, "string"),
            (r"\d+\.\d+|\d+", Number),
            (r"&&|\|\||[=!<>]=|[+\-*/%]=|[-+*/%<>=!]", Operator),
            (r"[{}()\[\];,.:?]", Punctuation),
            (_IDENT, Name),
            (r".", Text),
        ],
        "comment": [
            (r"[^*]+", Comment.Multiline),
            (r"\*/", Comment.Multiline, "#pop"),
            (r"\*", Comment.Multiline),
        ],
        "string": [
            (r'\\(["\\/\'bfnrtva0]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})', String.Escape),
            (r'\\.', String.Escape),
            (r'[^"\\\n]+', String.Double),
            (r'"', String.Double, "#pop"),
            (r"\n", String.Double, "#pop"),
        ],
    }
