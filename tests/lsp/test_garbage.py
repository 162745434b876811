"""`cxpar lsp` fed garbage over stdio by a misbehaving client: every malformed message
is one `cxpar lsp:` line on stderr (no Python traceback), the server keeps answering
the next request, and a huge `Content-Length` is skipped instead of exhausting memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def message(obj: object) -> bytes:
    return frame(json.dumps(obj).encode())


INIT = (message({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"capabilities": {}, "processId": None, "rootUri": None}})
        + message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))

GARBAGE = {
    "not json": frame(b"{not json"),
    "a json array": frame(b"[1, 2, 3]"),
    "a json number": frame(b"42"),
    "invalid utf-8": frame(b'{"jsonrpc": "2.0", "id": 7, "method": "x", "params": "\xff"}'),
    "no method": frame(b'{"jsonrpc": "2.0", "id": 5}'),
    "bad params": message({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                           "params": {"textDocument": 5}}),
    "negative position": message({
        "jsonrpc": "2.0", "id": 2, "method": "textDocument/hover",
        "params": {"textDocument": {"uri": "file:///nope.cx"},
                   "position": {"line": 1, "character": -5}}}),
    "huge content-length": b"Content-Length: 99999999999\r\n\r\n{}",
    "header without body": b"hello world\r\n\r\n",
}


@pytest.mark.parametrize("garbage", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_is_one_line_on_stderr_and_the_server_goes_on(garbage: bytes) -> None:
    shutdown = (message({"jsonrpc": "2.0", "id": 99, "method": "shutdown"})
                + message({"jsonrpc": "2.0", "method": "exit"}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXPAR_")}
    env["PYTHONPATH"] = str(ROOT)
    r = subprocess.run([sys.executable, "-m", "cxpar", "lsp"], input=INIT + garbage + shutdown,
                       capture_output=True, env=env, timeout=60)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, err
    assert "Traceback" not in err and "internal error" not in err
    assert all(line.startswith("cxpar lsp: ") for line in err.splitlines()), err
    if garbage.startswith(b"Content-Length: 99999999999"):
        assert "skipped a message of 99999999999 bytes" in err
    else:
        assert b'"id": 99' in r.stdout  # the shutdown after the garbage is answered
