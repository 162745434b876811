"""Hardening of the stdio transport against a misbehaving client.

pygls reads ``Content-Length`` bytes in one ``read`` (a huge length is a MemoryError that
ends the server) and logs a malformed message with its Python traceback. Here a message
over :data:`MAX_MESSAGE_BYTES` is skipped, and pygls's log records go to stderr as one
``cxpar lsp:`` line each, without a traceback (``CXPAR_DEBUG=1`` keeps tracebacks).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import BinaryIO

#: The largest JSON-RPC message body the server reads (a CX file is at most 4 MiB).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_CHUNK = 1024 * 1024
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Group)\b")


class BoundedStdin:
    """``stdin`` whose ``read(n)`` skips a body over :data:`MAX_MESSAGE_BYTES` (it
    returns ``null``, which pygls reports as a malformed message and then goes on)."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw

    def readline(self) -> bytes:
        return self.raw.readline(_CHUNK)

    def read(self, n: int) -> bytes:
        if n <= MAX_MESSAGE_BYTES:
            return self.raw.read(n)
        logging.getLogger("pygls").error(
            "skipped a message of %d bytes (over the %d MiB limit)", n,
            MAX_MESSAGE_BYTES // (1024 * 1024))
        left = n
        while left > 0:
            chunk = self.raw.read(min(left, _CHUNK))
            if not chunk:
                return b""
            left -= len(chunk)
        return b"null"


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        lines = [line.strip(" |") for line in record.getMessage().splitlines()]
        lines = [line for line in lines if any(c.isalnum() for c in line)]
        message = lines[0] if lines else ""
        if len(lines) > 1:  # a traceback pasted into the message: keep its exception
            errors = [line for line in lines[1:] if _EXCEPTION.match(line)]
            message = f"{message}: {(errors or lines)[-1]}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            message = f"{message}: {type(exc).__name__}: {exc}"
        return f"cxpar lsp: {message}"


def quiet_logging() -> None:
    """Send pygls's warnings and errors to stderr as single lines (no tracebacks)."""
    if os.environ.get("CXPAR_DEBUG"):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    log = logging.getLogger("pygls")
    log.addHandler(handler)
    log.setLevel(logging.WARNING)
    log.propagate = False
