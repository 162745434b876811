"""The top-level entry: run a compiled program's main coroutine and return its exit code."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import IO, Any

from .clock import new_loop
from .errors import SpanLike, render_error
from .providers.base import Provider
from .scheduler import Runtime
from .settings import RunSettings
from .signals import EXIT_TERMINATED, sigterm_cancels
from .tracing import Recorder

__all__ = ["run_program"]


@contextlib.contextmanager
def gc_tuned() -> Iterator[None]:
    """Cheaper garbage collection while a program runs.

    A large fan-out allocates tens of thousands of tasks, frames and dicts at once, and
    CPython's default generation-0 threshold (700) then runs collections that scan the
    whole heap again and again: about half the time of a 20 000-branch fan-out here.
    We move everything that exists before the run (modules, compiled code) out of the
    collector's view (``gc.freeze``) and collect young objects every 50 000 allocations.
    ``CXPAR_GC=default`` keeps CPython's settings.
    """
    if os.environ.get("CXPAR_GC") == "default":
        yield
        return
    saved = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()


def run_program(main: Callable[[Runtime], Awaitable[Any]],
                settings: RunSettings | None = None, *,
                spans: Sequence[SpanLike] = (), sources: Mapping[str, str] | None = None,
                provider: Provider | None = None, stdout: IO[str] | None = None,
                stderr: IO[str] | None = None, setup: Callable[[Runtime], None] | None = None,
                critical: Sequence[str] = ()) -> int:
    """Run ``await main(rt)`` as the top level on a fresh loop; 0 ok, 3 errors/timeout, 130 ^C.

    ``settings`` (default: ``RunSettings()``) holds every option of the run; ``provider``
    (default: the built-in one ``settings`` names) answers service calls. ``setup(rt)``
    (optional) runs before the loop starts, e.g. to register classes. ``critical``: the
    services on the static critical path, for ``settings.dashboard``.
    """
    s = settings if settings is not None else RunSettings()
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    recorder = Recorder(keep_spans=s.trace is not None) if (s.stats or s.trace or s.dashboard) \
        else None
    rt = Runtime(s, spans=spans, sources=sources, provider=provider, stdout=out, stderr=err,
                 recorder=recorder)
    live = None
    if s.dashboard:
        from .dashboard import Monitor, console_writer

        mon = Monitor(recorder, limiter=rt.limiter, breakers=rt._breakers,
                      adaptive=rt.resilience.limiters, critical=critical,
                      runtimes=[rt])
        live = mon.live(console_writer(err))
        rt.stderr = live  # type: ignore[assignment]  # reports go above the live view
    loop = new_loop(s.clock, guard_s=s.guard_s)
    code = 0
    with gc_tuned(), asyncio.Runner(loop_factory=lambda: loop) as runner, \
            sigterm_cancels(lambda: rt.main_task) as term:
        rt.attach(loop)
        if setup is not None:
            setup(rt)
        try:
            if live is not None:
                live.start()
            try:
                code = runner.run(rt.run_main(main, timeout_ms=s.timeout_ms))
            finally:
                if live is not None:
                    live.stop()
                    rt.stderr = err
        except (KeyboardInterrupt, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and not term.received:
                raise
            pend = rt.pending()
            notes = [f"still running: {', '.join(pend[:10])}"
                     + (f" and {len(pend) - 10} more" if len(pend) > 10 else "")] if pend else []
            terminated = isinstance(exc, asyncio.CancelledError)
            err.write(render_error("terminated (SIGTERM)" if terminated else "interrupted",
                                   None, {}, notes=notes) + "\n")
            code = EXIT_TERMINATED if terminated else 130
    try:
        out.flush()
    except (OSError, ValueError):
        pass
    if recorder is not None:
        if s.stats:
            recorder.render_stats(err)
        if s.trace:
            recorder.write_trace(s.trace)
    return code
