"""A real `cxpar serve` process on 127.0.0.1 (any free port) for the tests."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
TICKETS = ROOT / "examples" / "batch_tickets.cx"


class Served:
    """The server process, its base URL and what it printed on stderr."""

    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.err_lines: list[str] = []

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, **kw)  # type: ignore[arg-type]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        assert self.proc.stderr is not None
        self.err_lines += self.proc.stderr.read().splitlines()
        return code


def start(program: Path | str = TICKETS, *args: str, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Served:
    """Start `cxpar serve program --port 0 args…` and wait for its start-up line."""
    full_env = {k: v for k, v in os.environ.items() if k != "CXPAR_SERVE_TOKEN"}
    full_env.update(PYTHONUNBUFFERED="1", **(env or {}))
    proc = subprocess.Popen([sys.executable, "-m", "cxpar", "serve", str(program),
                             "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full_env,
                            cwd=cwd or ROOT)
    assert proc.stderr is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    seen: list[str] = []
    while time.monotonic() < deadline:
        if not sel.select(timeout=1):
            if proc.poll() is not None:
                break
            continue
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        m = re.search(r"on (http://\S+?)/ ", line)
        if m:
            served = Served(proc, m.group(1))
            served.err_lines = seen
            return served
    proc.kill()
    rest = proc.stderr.read()
    raise AssertionError(f"the server did not start: {''.join(seen)}{rest}")


@contextmanager
def serving(program: Path | str = TICKETS, *args: str, env: dict[str, str] | None = None,
            cwd: Path | None = None) -> Iterator[Served]:
    served = start(program, *args, env=env, cwd=cwd)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.stop()
