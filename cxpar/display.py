"""Making user-controlled text safe to show (a leaf module any stage may import).

File names and source lines reach terminals and logs in diagnostics and runtime error
reports. Control characters in them (an ESC that recolours or clears the terminal, a
carriage return that hides text, bidirectional overrides that reorder it) are shown
escaped, and bytes of a file name that are not UTF-8 (Python keeps them as lone
surrogates, PEP 383) are shown as ``\\xNN``, so the output is always valid UTF-8.
Program output (``print``) is never changed.
"""

from __future__ import annotations

import re

#: C0 controls but tab, DEL, C1 controls, bidi embeddings/overrides/isolates, and lone
#: surrogates.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_ALL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def escape_char(ch: str) -> str:
    """The visible form of one unsafe character: ``\\x1b``, ``\\u202e``, ``\\xff`` for an
    undecodable file-name byte."""
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the original byte
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def safe(text: str, *, keep_tabs: bool = False) -> str:
    """``text`` with control characters, bidi controls and undecodable bytes escaped
    (tabs kept when ``keep_tabs``)."""
    pattern = _UNSAFE if keep_tabs else _UNSAFE_ALL
    return pattern.sub(lambda m: escape_char(m.group()), text)


def is_unsafe(ch: str) -> bool:
    """Whether :func:`safe` would escape ``ch`` (tabs excepted)."""
    return _UNSAFE.fullmatch(ch) is not None
