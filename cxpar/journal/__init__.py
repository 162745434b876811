"""Durable runs: a SQLite journal of provider calls (``--journal``, ``--replay``).

- :mod:`.schema`: the versioned schema and how a journal file is opened;
- :mod:`.keys`: how a call is identified (stream, service, canonical request,
  occurrence);
- :mod:`.store`: :class:`Journal`, reading and committing calls;
- :mod:`.provider`: :class:`JournaledProvider`, the wrapper the runtime sees;
- :mod:`.report`: what ``cxpar journal`` shows.

:func:`attach` is what the commands call: it opens the journal, starts a run in it and
wraps the run's provider. See docs/durability.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .schema import JournalError
from .store import Journal

__all__ = ["Journal", "JournalError", "JournalSession", "attach", "run_with_journal"]


@dataclass
class JournalSession:
    """A journal opened for one run: the wrapped provider and what to tell the user."""

    journal: Journal
    provider: Any
    warnings: list[str]

    def finish(self, code: int) -> None:
        """Record how the run ended (from its exit code) and close the journal."""
        status = {0: "ok", 130: "interrupted", 143: "interrupted"}.get(code, "failed")
        try:
            self.journal.end_run(status)
        except JournalError:
            pass
        self.journal.close()


def attach(provider: Any, *, journal: str | None, replay: str | None, program: str,
           source: str, kind: str) -> JournalSession | None:
    """Wrap ``provider`` for ``--journal PATH`` or ``--replay PATH`` (None: neither).

    Raises :class:`JournalError` (exit 2) when the journal cannot be used, or when both
    are given.
    """
    if journal is None and replay is None:
        return None
    if journal is not None and replay is not None:
        raise JournalError("use either --journal (record and serve) or --replay (serve "
                           "only), not both")
    from .provider import JournaledProvider, describe_provider

    path = journal if journal is not None else replay
    assert path is not None
    store = Journal.open(path, write=journal is not None)
    try:
        warnings = store.begin_run(program=program, source=source, kind=kind,
                                   provider=describe_provider(provider)[0])
    except BaseException:
        store.close()
        raise
    wrapped = JournaledProvider(provider, store, strict=replay is not None)
    return JournalSession(store, wrapped, warnings)


def run_with_journal(settings: Any, provider: Any, run: Callable[[Any], int], *,
                     program: str, source: str, kind: str,
                     stderr: IO[str] | None = None) -> int:
    """``run(provider)`` with ``provider`` wrapped for ``settings.journal`` /
    ``settings.replay`` (if either is set); the journal records how the run ended.

    Raises :class:`JournalError` (before anything runs) when the journal cannot be used.
    """
    session = attach(provider, journal=settings.journal, replay=settings.replay,
                     program=program, source=source, kind=kind)
    if session is None:
        return run(provider)
    err = stderr if stderr is not None else sys.stderr
    for message in session.warnings:
        err.write(f"warning: {message}\n")
    code = 70
    try:
        code = run(session.provider)
    except KeyboardInterrupt:
        code = 130
        raise
    finally:
        session.finish(code)
    p = session.provider
    if not p.strict and (p.served or p.recorded):
        err.write(f"cxpar: journal `{session.journal.path}`: {p.served} "
                  f"call{'s' if p.served != 1 else ''} answered from it, {p.recorded} "
                  "sent to the provider and recorded\n")
    missed = p.not_recorded
    if missed:
        err.write(f"warning: {missed} provider call{'s' if missed != 1 else ''} "
                  f"{'were' if missed != 1 else 'was'} not in journal `{session.journal.path}` "
                  "(each failed with `_errors` type `not_recorded`)\n")
    return code
