"""``cxpar.Runtime``: a session whose runs share one provider, limiter and breakers."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

from cxpar.runtime.settings import RunSettings

if TYPE_CHECKING:
    from cxpar.journal import JournalSession
    from cxpar.runtime.streams import Shared

    from .program import Program
    from .result import RunResult

__all__ = ["Runtime", "SHARED_FIELDS"]

#: Settings that shape what a session shares (provider, its sim options, limits,
#: breakers, clock). A run whose settings differ from its session's in any of them gets
#: private shared services for that run only; the rest (seed, timeout, …) are per run.
SHARED_FIELDS = ("clock", "provider", "latency", "fail_rate", "timeout_rate", "capacity",
                 "max_concurrency", "breaker", "limits", "journal", "replay")


class Runtime:
    """A session for many runs: one provider (its HTTP connection pool), one global
    concurrency limit, one set of circuit breakers and adaptive limits, shared by every
    run started with ``runtime=`` this session — concurrently or one after another.

    A session serves one event loop (the first one that runs a program with it). Use it
    as an async context manager, or call :meth:`aclose`, to close the provider's
    connections::

        async with cxpar.Runtime(cxpar.RunSettings(max_concurrency=8)) as rt:
            results = await asyncio.gather(*(program.run(r, runtime=rt) for r in records))

    ``provider``: a provider object to use instead of the one ``settings`` names (any
    object with ``async def call(service, request, context)``; see docs/runtime.md).

    With ``settings.journal`` (or ``settings.replay``) the session opens that journal
    for its first run's program (``kind`` is what the journal records: ``api``,
    ``serve``) and every run calls the provider through it: each run is one stream of
    the journal, so a run whose requests were recorded before the journal was opened is
    answered from it (docs/durability.md).
    """

    def __init__(self, settings: RunSettings | None = None, *, provider: Any = None,
                 kind: str = "api") -> None:
        self.settings = RunSettings.check(settings)
        self.kind = kind
        self._journal: JournalSession | None = None
        #: Journal totals: calls answered from it, sent and recorded, not recorded.
        self.journal_counts = {"served": 0, "recorded": 0, "not_recorded": 0}
        self._provider = provider
        self._own_provider = provider is None
        self._shared: Shared | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        #: Runs in flight in this session now.
        self.active = 0
        #: Runs started in this session so far.
        self.started = 0

    # ------------------------------------------------------------ shared services
    def shares(self, settings: RunSettings) -> bool:
        """Whether a run with ``settings`` can use this session's shared services."""
        return all(getattr(settings, f) == getattr(self.settings, f) for f in SHARED_FIELDS)

    def shared(self) -> Shared:
        """The shared services, made on first use and bound to the running loop."""
        from cxpar.runtime.streams import Shared

        loop = asyncio.get_running_loop()
        if self._shared is None:
            provider = self._provider
            if provider is None:
                provider = make_provider(self.settings)
                self._provider = provider
            self._shared = Shared(self.settings, provider)
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("this cxpar.Runtime is bound to another event loop; make "
                               "one Runtime per loop")
        return self._shared

    @property
    def provider(self) -> Any:
        """The provider the runs call (made on first use)."""
        if self._provider is None:
            self._provider = make_provider(self.settings)
        return self._provider

    def queue_depth(self) -> int:
        """Provider calls waiting for a slot of the global limit now (0 without one)."""
        shared = self._shared
        lim = getattr(shared, "limiter", None) if shared is not None else None
        return int(getattr(lim, "_waiting", 0) or 0) if lim is not None else 0

    # ------------------------------------------------------------ the journal
    def open_journal(self, program: Program) -> list[str]:
        """Open ``settings.journal`` / ``settings.replay`` for ``program``'s runs (once;
        nothing without either). Returns the journal's warnings; raises
        :class:`cxpar.journal.JournalError` when it cannot be used."""
        s = self.settings
        if self._journal is not None or (s.journal is None and s.replay is None):
            return []
        from cxpar.journal import attach

        self._journal = attach(self.provider, journal=s.journal, replay=s.replay,
                               program=program.name, source=program.source.text,
                               kind=self.kind)
        return self._journal.warnings if self._journal is not None else []

    def run_provider(self, provider: Any) -> Any:
        """The provider one run calls: ``provider`` itself, or — with a journal — a
        journaled wrapper of its own (so occurrences of a request count per run)."""
        if self._journal is None:
            return provider
        from cxpar.journal.provider import JournaledProvider

        return JournaledProvider(provider, self._journal.journal,
                                 strict=self.settings.replay is not None)

    def run_finished(self, provider: Any) -> None:
        """Add a run's journal counts (``provider`` from :meth:`run_provider`)."""
        for key in self.journal_counts:
            self.journal_counts[key] += int(getattr(provider, key, 0) or 0)

    def next_id(self) -> str:
        """A new run id, unique in this session (``r1``, ``r2``, …)."""
        return f"r{next(self._ids)}"

    # ------------------------------------------------------------ running
    async def run(self, program: Program, record: Any = None, **kwargs: Any) -> RunResult:
        """``await program.run(record, runtime=self, **kwargs)``."""
        return await program.run(record, runtime=self, **kwargs)

    async def aclose(self) -> None:
        """Close the provider's connections (a provider this session made) and the
        journal."""
        provider, self._provider = self._provider, None if self._own_provider else \
            self._provider
        self._shared = None
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.finish(0)
        close = getattr(provider, "aclose", None) if self._own_provider else None
        if close is not None:
            await close()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def make_provider(settings: RunSettings) -> Any:
    """The provider ``settings`` names: built-in or a plug-in (``MODULE:ATTR``, entry
    point), as ``cxpar run`` makes it."""
    from cxpar.plugins import make_provider as make

    return make(settings)
