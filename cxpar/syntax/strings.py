"""CX string literals: the escapes of SPEC rule 31 (CX v1.0 lexes a backslash before any
character).

``\\" \\\\ \\/ \\' \\n \\t \\r \\b \\f \\v \\a \\0``, ``\\xHH`` and ``\\uXXXX`` mean what they
mean in C#/JavaScript, and two ``\\u`` escapes forming a UTF-16 surrogate pair are one
character. Any other ``\\c`` is the character ``c`` (a warning). A lone surrogate or a
malformed ``\\x``/``\\u`` escape is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SIMPLE: dict[str, str] = {
    '"': '"', "\\": "\\", "/": "/", "'": "'", "n": "\n", "t": "\t", "r": "\r", "b": "\b",
    "f": "\f", "v": "\v", "a": "\a", "0": "\0",
}

#: How the escapes are listed in messages.
KNOWN = '\\" \\\\ \\/ \\\' \\n \\t \\r \\b \\f \\v \\a \\0 \\xHH \\uXXXX'

_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|x([0-9a-fA-F]{2})|(.))", re.S)
_HEX4 = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass(frozen=True, slots=True)
class Issue:
    """A problem with one escape: offsets are into the literal (quotes included)."""

    error: bool
    start: int
    end: int
    message: str
    label: str
    help: str


def decode(raw: str) -> tuple[str, list[Issue]]:
    """The value of the string literal ``raw`` (with its quotes) and its escape issues."""
    body = raw[1:-1]
    if "\\" not in body:
        return body, []
    out: list[str] = []
    issues: list[Issue] = []
    i = 0
    n = len(body)
    while i < n:
        j = body.find("\\", i)
        if j == -1:
            out.append(body[i:])
            break
        out.append(body[i:j])
        m = _ESCAPE.match(body, j)
        if m is None:  # a backslash at the very end cannot happen: the quote would be escaped
            out.append("\\")
            i = j + 1
            continue
        i = m.end()
        at = j + 1  # offset in `raw`
        hex4, hex2, other = m.groups()
        if hex4 is not None:
            code = int(hex4, 16)
            if 0xD800 <= code <= 0xDBFF:
                low = _HEX4.match(body, i)
                if low is not None and 0xDC00 <= int(low.group(1), 16) <= 0xDFFF:
                    code = 0x10000 + ((code - 0xD800) << 10) + (int(low.group(1), 16) - 0xDC00)
                    i = low.end()
                    out.append(chr(code))
                    continue
            if 0xD800 <= code <= 0xDFFF:
                issues.append(Issue(True, at, at + 6, f"lone surrogate `\\u{hex4}` in string",
                                    "not a character on its own",
                                    "a surrogate needs its pair (`\\ud83c\\udfaf` is one "
                                    "character); write the character itself or a full pair"))
                out.append("\ufffd")
                continue
            out.append(chr(code))
        elif hex2 is not None:
            out.append(chr(int(hex2, 16)))
        elif other in SIMPLE:
            out.append(SIMPLE[other])
        elif other in ("x", "u"):
            want = "two" if other == "x" else "four"
            issues.append(Issue(True, at, at + 2, f"invalid `\\{other}` escape in string",
                                f"needs {want} hex digits",
                                f"write `\\{other}` with exactly {want} hex digits, or `\\\\` "
                                "for a backslash"))
            out.append(other)
        else:
            issues.append(Issue(False, at, at + 1 + len(other),
                                f"unknown escape `\\{other}` means `{_shown(other)}`",
                                f"the same as `{_shown(other)}`",
                                f"write `\\\\{other}` for a backslash followed by "
                                f"`{_shown(other)}`, or drop the backslash; escapes are "
                                + KNOWN))
            out.append(other)
    return "".join(out), issues


def _shown(ch: str) -> str:
    return ch if ch.isprintable() else repr(ch)[1:-1]
