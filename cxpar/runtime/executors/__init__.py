"""Where a batch run's streams run: ``--executor local|ray`` (docs/scaling.md).

An executor takes the records a batch has to run (``batch.todo()``: input order, the
records already in a resumed output and malformed lines left out) and hands every
finished record's result lines back through ``batch.finish`` — the batch's writer stays
the only writer of the output, whatever the executor. ``start()`` runs before the
batch's event loop (starting Ray blocks), ``await run(batch)`` on it, and ``close()``
after it, whatever happened (Ctrl-C, SIGTERM, an error).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, Protocol

from ..settings import RunSettings

__all__ = ["Executor", "ExecutorError", "LocalExecutor", "executor_for"]


class ExecutorError(Exception):
    """The executor cannot go on: ``exit_code`` 2 when it could not start (Ray not
    reachable, a worker that cannot compile the program), 3 when records were left
    unrun (every worker lost)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Executor(Protocol):
    """Runs a batch's records somewhere; see the module docstring."""

    def start(self) -> None: ...

    def now(self, loop: asyncio.AbstractEventLoop) -> float:
        """The run's time (for the recorder's root span) on the driver's ``loop``."""

    async def run(self, batch: Any) -> None: ...

    def close(self) -> None: ...

    def summary(self) -> str: ...


class LocalExecutor:
    """Every stream on the batch's own event loop, in this process (the default)."""

    def start(self) -> None:
        pass

    def now(self, loop: asyncio.AbstractEventLoop) -> float:
        return loop.time()

    async def run(self, batch: Any) -> None:
        await batch.run()

    def close(self) -> None:
        pass

    def summary(self) -> str:
        """Nothing to add to ``--stats``."""
        return ""


def executor_for(settings: RunSettings, sources: Mapping[str, str], todo: int) -> Executor:
    """The executor ``settings.executor`` names, for a batch of ``todo`` records of the
    program whose source is ``sources`` (one file: name → text)."""
    if settings.executor != "ray":
        return LocalExecutor()
    from ..scheduler import PLUGIN_SERVICES
    from .ray import RayExecutor
    from .ray_worker import ProgramSource

    name, text = next(iter(sources.items()))
    services = {n: stem for n, (stem, _impl) in PLUGIN_SERVICES.items()}
    return RayExecutor(settings, ProgramSource(name, text, services, os.getcwd()), todo)
