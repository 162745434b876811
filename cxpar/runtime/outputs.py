"""Files a run writes (``--trace``, batch ``--output``, ``-o``): checked before anything
runs, so a typo in a directory name costs nothing (issue 16).

:func:`output_problem` says why a path cannot be written — a missing directory, a
directory, no permission, a full device — without changing an existing file; the CLI
and the standalone module turn it into a usage error (exit 2) that names the path.
Writes that fail later (the disk fills up mid-run) raise :class:`OutputError`.
"""

from __future__ import annotations

import os
import stat
from typing import Any

__all__ = ["OutputError", "check_outputs", "output_problem"]


class OutputError(OSError):
    """Writing an output file failed while the program ran."""

    def __init__(self, what: str, path: str, exc: OSError) -> None:
        super().__init__(exc.errno, f"cannot write {what} `{path}`: "
                                    f"{exc.strerror or exc}")
        self.what = what
        self.path = path

    def __str__(self) -> str:
        return str(self.strerror)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def output_problem(path: str) -> str | None:
    """Why ``path`` cannot be written as an output file (None if it can)."""
    if not path:
        return "the path is empty"
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        st = None
    except OSError as exc:
        return _why(exc)
    if st is None:
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            return (f"the directory `{parent}` does not exist" if not os.path.exists(parent)
                    else f"`{parent}` is not a directory")
        try:  # create it to be sure (and remove it again: nothing ran yet)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            return None
        except OSError as exc:
            return _why(exc)
        os.close(fd)
        os.unlink(path)
        return None
    if stat.S_ISDIR(st.st_mode):
        return "it is a directory"
    if stat.S_ISFIFO(st.st_mode):
        return None  # opening a pipe for writing would wait for a reader
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)  # never truncates
    except OSError as exc:
        return _why(exc)
    try:
        if stat.S_ISCHR(st.st_mode) and not os.isatty(fd):
            os.write(fd, b"\n")  # devices that discard accept it; /dev/full does not
    except OSError as exc:
        return _why(exc)
    finally:
        os.close(fd)
    return None


def check_outputs(settings: Any) -> list[str]:
    """``["--trace `t.json`: …"]``: a message per output of ``settings`` that cannot be
    written (``trace``, ``stats_json``, batch ``output``)."""
    out = []
    for flag, path in (("--trace", settings.trace), ("--stats-json", settings.stats_json),
                       ("--output", settings.output)):
        if path is not None:
            why = output_problem(path)
            if why:
                out.append(f"{flag} `{path}`: cannot write there: {why}")
    return out
