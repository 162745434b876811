"""`cxpar fmt`: one canonical layout for CX source (docs/style.md).

:func:`format_source` is the whole formatter, shared by the CLI and the language
server: it refuses (with the syntax diagnostics) to touch a file that does not parse,
then prints the file's concrete syntax tree, comments attached, through a small
Wadler/Prettier document printer.
"""

from __future__ import annotations

from cxpar.fmt.format import FormatError, format_file, format_source

__all__ = ["FormatError", "format_file", "format_source"]
