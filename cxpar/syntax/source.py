"""Reading CX files robustly: every bad input becomes a diagnostic, never a traceback."""

from __future__ import annotations

import os
import stat
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
    """Read and decode ``path``; ``name`` is the file name shown in diagnostics.

    Only regular files are read: a FIFO, socket or device is refused rather than read
    (reading a FIFO with no writer would block forever). The file is opened without
    blocking and checked through its descriptor, so a swapped path cannot slip through.
    """
    shown = name if name is not None else str(path)
    here = Span(shown, 1, 1, 1, 2)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        return error("CX001", f"no such file: `{shown}`", here)
    except IsADirectoryError:
        return error("CX001", f"`{shown}` is a directory, not a file", here)
    except OSError as exc:
        return error("CX001", f"cannot read `{shown}`: {exc.strerror or exc}", here)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            return error("CX001", f"`{shown}` is a directory, not a file", here)
        if not stat.S_ISREG(info.st_mode):
            return error("CX001", f"`{shown}` is not a regular file ({_kind(info.st_mode)})",
                         here, help="pass a `.cx` file; to check text from a pipe, save it "
                                    "to a file first")
        size = info.st_size
        limit = max_file_bytes()
        if size > limit:
            return error("CX003", f"file too large ({size / 2**20:.1f} MiB; the limit is "
                         f"{limit / 2**20:.1f} MiB)", here,
                         help="split the program, or raise CXPAR_MAX_FILE_BYTES")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        return error("CX001", f"cannot read `{shown}`: {exc.strerror or exc}", here)
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while we read it
        return error("CX003", f"file too large (more than {limit / 2**20:.1f} MiB)", here,
                     help="split the program, or raise CXPAR_MAX_FILE_BYTES")
    return decode(data, shown)


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a plain file"
