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
from .cost import Meter
from .errors import SpanLike, render_error, still_running
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
    rt = Runtime(s, spans=spans, sources=sources, provider=provider, stdout=out, stderr=err)
    recorder = rt.recorder = make_recorder(s, rt.meter, rt.provider)
    live = None
    if s.dashboard:
        from .dashboard import Monitor, console_writer

        mon = Monitor(recorder, limiter=rt.limiter, breakers=rt._breakers,
                      adaptive=rt.resilience.limiters, critical=critical,
                      runtimes=[rt])
        live = mon.live(console_writer(err))
        rt.stderr = live  # type: ignore[assignment]  # reports go above the live view
    loop = new_loop(s.clock, guard_s=s.guard_s)
    if live is not None:
        mon.loop = loop
    code = 0
    with gc_tuned(), asyncio.Runner(loop_factory=lambda: loop) as runner, \
            sigterm_cancels(lambda: rt.main_task) as term:
        rt.attach(loop)
        if recorder is not None:
            recorder.start_run(loop.time())
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
            notes = still_running(rt.pending())
            terminated = isinstance(exc, asyncio.CancelledError)
            err.write(render_error("terminated (SIGTERM)" if terminated else "interrupted",
                                   None, {}, notes=notes) + "\n")
            code = EXIT_TERMINATED if terminated else 130
        if recorder is not None:
            recorder.end_run(loop.time(), None if code == 0 else "error")
    try:
        out.flush()
    except (OSError, ValueError):
        pass
    if rt.failures and code not in (130, EXIT_TERMINATED):
        err.write(rt.failures.render(s.strict) + "\n")
        if s.strict and code == 0:
            code = 3
    code = budget_outcome(rt.meter, code, err)
    if not finish_recorder(recorder, s, err):
        code = code or 3
    return code


def make_recorder(s: RunSettings, meter: Meter, provider: Any = None) -> Recorder | None:
    """The run's recorder: spans for ``--stats``/``--stats-json``/``--trace``/``--otel``
    (which starts exporting them; :meth:`Recorder.close` flushes), counters only for the
    dashboard, none otherwise."""
    spans = bool(s.stats or s.trace or s.stats_json or s.otel)
    if not (spans or s.dashboard):
        return None
    rec = Recorder(keep_spans=spans, meter=meter)
    if s.otel:
        from cxpar.otel import start

        start(rec, s, provider)
    return rec


def finish_recorder(recorder: Recorder | None, s: RunSettings, err: IO[str]) -> bool:
    """Print ``--stats``, write ``--trace`` / ``--stats-json`` and flush ``--otel`` spans at
    the end of a run; False (said on ``err``) when a file could not be written."""
    if recorder is None:
        return True
    recorder.close()
    if s.stats:
        recorder.render_stats(err)
    ok = True
    for what, path, write in (("the trace", s.trace, recorder.write_trace),
                              ("the stats", s.stats_json, recorder.write_stats_json)):
        if not path:
            continue
        try:
            write(path)
        except OSError as exc:
            err.write(render_error(f"cannot write {what} to `{path}`: "
                                   f"{exc.strerror or exc}", None, {}) + "\n")
            ok = False
    return ok


def budget_outcome(meter: Meter, code: int, err: IO[str]) -> int:
    """Say which budget stopped the run (exit 3), if one did (refused a call)."""
    if meter.stop is None or not (meter.stopped_calls or meter.stopped_records) \
            or code in (130, EXIT_TERMINATED):
        return code
    calls, records = meter.stopped_calls, meter.stopped_records
    notes = [f"{calls} service call{'s' if calls != 1 else ''} not started "
             f"(`_errors` type `budget_exceeded`)"]
    if records:
        notes.append(f"{records} record{'s' if records != 1 else ''} not run: run again "
                     f"with --resume and a larger budget to finish them")
    err.write(render_error(meter.stop, None, {}, notes=notes) + "\n")
    return 3
