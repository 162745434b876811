"""Reading CX files robustly: every bad input becomes a diagnostic, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from cxpar.diagnostics.model import Diagnostic, error
from cxpar.span import SourceFile, Span

DEFAULT_MAX_BYTES = 4 * 1024 * 1024


def max_file_bytes() -> int:
    try:
        return int(os.environ.get("CXPAR_MAX_FILE_BYTES", DEFAULT_MAX_BYTES))
    except ValueError:
        return DEFAULT_MAX_BYTES


def decode(data: bytes, name: str) -> SourceFile | Diagnostic:
    """Decode ``data`` as CX source: UTF-8, optional BOM, CRLF/CR normalised to LF."""
    if b"\x00" in data:
        return error("CX002", "binary file (contains NUL bytes), not CX source",
                     Span(name, 1, 1, 1, 2), help="pass a `.cx` text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8", errors="replace")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        return error("CX002", f"invalid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                     Span(name, line, col, line, col + 1, len(good), len(good) + 1),
                     help="save the file as UTF-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return SourceFile(name, text)


def read_source(path: Path, name: str | None = None) -> SourceFile | Diagnostic:
    """Read and decode ``path``; ``name`` is the file name shown in diagnostics."""
    shown = name if name is not None else str(path)
    here = Span(shown, 1, 1, 1, 2)
    try:
        if not path.exists():
            return error("CX001", f"no such file: `{shown}`", here)
        if path.is_dir():
            return error("CX001", f"`{shown}` is a directory, not a file", here)
        size = path.stat().st_size
        limit = max_file_bytes()
        if size > limit:
            return error("CX003", f"file too large ({size / 2**20:.1f} MiB; the limit is "
                         f"{limit / 2**20:.1f} MiB)", here,
                         help="split the program, or raise CXPAR_MAX_FILE_BYTES")
        data = path.read_bytes()
    except OSError as exc:
        return error("CX001", f"cannot read `{shown}`: {exc.strerror or exc}", here)
    return decode(data, shown)
