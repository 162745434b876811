"""``cxpar.Runtime``: a session whose runs share one provider, limiter and breakers."""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

from cxpar.runtime.settings import RunSettings

if TYPE_CHECKING:
    from cxpar.runtime.streams import Shared

    from .program import Program
    from .result import RunResult

__all__ = ["Runtime", "SHARED_FIELDS"]

#: Settings that shape what a session shares (provider, its sim options, limits,
#: breakers, clock). A run whose settings differ from its session's in any of them gets
#: private shared services for that run only; the rest (seed, timeout, …) are per run.
SHARED_FIELDS = ("clock", "provider", "latency", "fail_rate", "timeout_rate", "capacity",
                 "max_concurrency", "breaker", "limits")


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
    """

    def __init__(self, settings: RunSettings | None = None, *, provider: Any = None) -> None:
        self.settings = settings if settings is not None else RunSettings()
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

    def next_id(self) -> str:
        """A new run id, unique in this session (``r1``, ``r2``, …)."""
        return f"r{next(self._ids)}"

    # ------------------------------------------------------------ running
    async def run(self, program: Program, record: Any = None, **kwargs: Any) -> RunResult:
        """``await program.run(record, runtime=self, **kwargs)``."""
        return await program.run(record, runtime=self, **kwargs)

    async def aclose(self) -> None:
        """Close the provider's connections (a provider this session made)."""
        provider, self._provider = self._provider, None if self._own_provider else \
            self._provider
        self._shared = None
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
