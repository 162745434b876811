"""Running the app on uvicorn: binding, the start-up line, graceful SIGTERM/Ctrl-C."""

from __future__ import annotations

import signal
import socket
import sys
from types import FrameType
from typing import Any

import uvicorn

from cxpar import Program, RunSettings
from cxpar.driver import UsageError

from .app import ServeOptions, create_app
from .runs import Runs

__all__ = ["serve_forever"]


class _Server(uvicorn.Server):
    """uvicorn, with shutdown that gives runs ``--grace`` and then exits 0."""

    def __init__(self, config: uvicorn.Config, runs: Runs, grace_s: float) -> None:
        super().__init__(config)
        self.runs = runs
        self.grace_s = grace_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            if sig == signal.SIGINT:
                self.force_exit = True
            return
        self.should_exit = True
        loop = self.runs.loop
        active = self.runs.active
        sys.stderr.write(f"cxpar: shutting down ({active} run{'s' * (active != 1)} in "
                         f"flight get up to {self.grace_s:g} s to finish)\n")
        sys.stderr.flush()
        if loop is not None:
            loop.call_soon_threadsafe(
                lambda: loop.create_task(self.runs.shutdown(self.grace_s)))


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (a usage error if that is impossible)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host: cannot resolve `{host}` ({exc.strerror})") from None
    family, kind, proto, _name, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def serve_forever(program: Program, settings: RunSettings, *, host: str, port: int,
                  token: str | None, max_body: int, grace_s: float, keep: int,
                  provider: Any = None) -> None:
    """Serve ``program`` until SIGTERM or Ctrl-C (then in-flight runs get ``grace_s``)."""
    app = create_app(program, settings, ServeOptions(token=token, max_body=max_body,
                                                     grace_s=grace_s, keep=keep,
                                                     provider=provider))
    runs: Runs = app.state.runs
    from cxpar.journal import JournalError

    try:
        for warning in runs.session.open_journal(program):
            sys.stderr.write(f"warning: {warning}\n")
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    sock = bind(host, port)
    real_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=int(grace_s) + 2)
    server = _Server(config, app.state.runs, grace_s)
    shown = f"[{host}]" if ":" in host else host
    sys.stderr.write(f"cxpar: serving {program.name} on http://{shown}:{real_port}/ "
                     f"(API /v1/runs, page /, metrics /metrics"
                     f"{', token required' if token else ''})\n")
    sys.stderr.flush()
    server.run(sockets=[sock])
    journal = settings.journal or settings.replay
    if journal is not None:
        n = runs.session.journal_counts
        sys.stderr.write(f"cxpar: journal `{journal}`: {n['served']} call"
                         f"{'s' * (n['served'] != 1)} answered from it, {n['recorded']} sent "
                         f"to the provider and recorded, {n['not_recorded']} not recorded\n")
