"""SIGTERM ends a run like Ctrl-C (SPEC §7: exit 143).

``asyncio.Runner`` turns the first SIGINT into a cancellation of the main task; this
does the same for SIGTERM, so a run stopped by a process manager (``kill``, systemd,
Kubernetes) flushes what it has and reports it, instead of dying mid-write. A second
SIGTERM ends the process at once (the default action).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Termination", "sigterm_cancels", "EXIT_TERMINATED"]

EXIT_TERMINATED = 143


class Termination:
    """Whether SIGTERM arrived while :func:`sigterm_cancels` was active."""

    __slots__ = ("received",)

    def __init__(self) -> None:
        self.received = False


@contextlib.contextmanager
def sigterm_cancels(main_task: Callable[[], asyncio.Task[Any] | None]) -> Iterator[Termination]:
    """While the block runs, SIGTERM cancels ``main_task()`` (as a first Ctrl-C cancels
    the runner's task); the block then sees ``asyncio.CancelledError`` and
    ``Termination.received``."""
    state = Termination()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        if state.received:  # the second one: stop now
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        task = main_task()
        if task is None or task.done():  # not running yet (or any more): the default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        state.received = True
        task.cancel()
        task.get_loop().call_soon_threadsafe(lambda: None)  # wake a sleeping loop

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)
