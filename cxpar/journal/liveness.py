"""Is the process that writes a journal run still alive?

A run is recorded as ``running`` until its writer ends it; a writer killed with
``kill -9`` (or a lost machine) never does. Each run records its writer's pid and host,
so a reader on the same host tells a run still going from one that was killed.
"""

from __future__ import annotations

import os
import socket

__all__ = ["HOST", "run_status"]

#: This machine's name, as recorded in ``runs.host``.
HOST = socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def run_status(status: str, pid: int | None, host: str | None) -> str:
    """The status to show for a recorded run: ``running`` becomes ``interrupted`` when its
    writer (on this host) is gone, and ``unfinished`` when that cannot be told (another
    host, or a run recorded before writers were)."""
    if status != "running":
        return status
    if pid is None or host != HOST:
        return "unfinished"
    return "running" if _alive(pid) else "interrupted"
