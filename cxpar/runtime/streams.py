"""Batch runs: one isolated stream per input record (``cxpar run --input``, issue 11).

Every record of a JSONL file runs the compiled program once, as a *stream*: a
:class:`StreamRuntime` of its own (bus, subscriptions, globals — ``program(rt)`` makes
fresh closures — entities, in-flight counter, errors), while all streams share one event
loop, the provider, the global concurrency limit, the circuit breakers and the stats
recorder (:class:`Shared`). A stream runs its top level, the runtime emits
``system.start {}`` and then ``input.record`` with the record as payload; the stream
ends at its own quiescence or at the per-stream ``--timeout``. Each
``emit output.record p`` is captured (as JSON, at emit time) and becomes an output line
``{"index": i, "output": p}``; a stream that emitted nothing writes ``"output": null``,
one with a runtime error, a timeout or a malformed input line writes
``{"index": i, "error": {...}}``. Every input index is written exactly once (a group
of lines for one stream is written with one ``write`` call), so ``--resume`` can skip the
indexes already in the output file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

from .batchfile import (
    OutputLock,
    check_input_file,
    check_not_input,
    escape_surrogates,
    result_lines,
    scan_output,
    sidecar_check,
    sidecar_write,
)
from .clock import new_loop
from .coordinator import DEPTH
from .cost import BUDGET_ERROR, Meter, meter_for
from .endpoints import as_endpoints
from .errors import (
    NO_SPAN_ID,
    CxRuntimeError,
    SpanLike,
    Stopped,
    code_of,
    lookup_span,
    render_error,
    still_running,
)
from .executors import ExecutorError, executor_for
from .failures import FailureLog
from .flows import FLOW, Flow, new_flow
from .limits import CircuitBreaker
from .providers import build_provider
from .providers.base import Provider
from .resilience import Resilience
from .run import budget_outcome, finish_recorder, gc_tuned, make_recorder
from .scheduler import STALLED, Runtime, task_names
from .settings import RunSettings
from .signals import EXIT_TERMINATED, Termination, sigterm_cancels
from .tracing import SPAN, Recorder
from .values import fmt_num, to_json

__all__ = ["Batch", "Progress", "Shared", "StreamRuntime", "run_batch",
           "count_records"]

INPUT_EVENT = "input.record"
OUTPUT_EVENT = "output.record"

# ---------------------------------------------------------------- shared services

class Shared:
    """What every stream of a batch shares: settings, provider, limiter, breakers, recorder."""

    def __init__(self, settings: RunSettings, provider: Provider, *,
                 recorder: Recorder | None = None) -> None:
        self.settings = settings
        self.provider = as_endpoints(provider, settings)
        #: One set of breakers/adaptive limits/budgets for all streams.
        self.resilience = resilience = Resilience(settings.breaker, settings.limits)
        self.limiter = resilience.global_limiter(settings.max_concurrency)
        self.breakers: dict[str, CircuitBreaker] = resilience.breakers
        #: Failures recorded only in `_errors`, over all streams (rule 6).
        self.failures = FailureLog()
        self.recorder = recorder
        #: Tokens, cost and the budget, for all streams together.
        self.meter: Meter = meter_for(settings, provider)
        if recorder is not None:
            recorder.meter = self.meter

    def flow_done(self, flow: Flow) -> None:
        """A stream ended: every limit's levels learn its attained service."""
        if self.limiter is not None:
            self.limiter.flow_done(flow)
        for lim in self.resilience.limiters.values():
            lim.flow_done(flow)


class StreamRuntime(Runtime):
    """The runtime of one stream: its own bus, entities and errors; shared services."""

    def __init__(self, index: int, shared: Shared, *, spans: Sequence[SpanLike] = (),
                 sources: Mapping[str, str] | None = None, seed: int = 0,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
        super().__init__(shared.settings, spans=spans, sources=sources,
                         provider=shared.provider, stdout=stdout, stderr=stderr,
                         resilience=shared.resilience, recorder=shared.recorder)
        self.meter = shared.meter
        self.reseed(seed)
        self.failures = shared.failures
        self.limiter = shared.limiter
        self.queueing = self.queueing or shared.limiter is not None
        self._breakers = shared.breakers
        self.index = index
        #: ``emit output.record`` payloads, as JSON text captured at emit time.
        self.outputs: list[str] = []
        #: Structured reports of this stream's runtime errors.
        self.errors: list[dict[str, Any]] = []

    def emit(self, name: str, payload: Any = None, span: int = NO_SPAN_ID) -> None:
        if name == OUTPUT_EVENT:
            self.outputs.append(escape_surrogates(to_json({} if payload is None else payload)))
        super().emit(name, payload, span)

    def report(self, exc: BaseException, where: str | None = None) -> None:
        if isinstance(exc, Stopped):
            return
        exc = self.cx_error(exc)
        err: dict[str, Any]
        if isinstance(exc, CxRuntimeError):
            err = {"type": "runtime", "message": exc.message}
            at = exc.span(self.spans)
            if at is not None:
                err.update(file=at[0], line=at[1], col=at[2])
        else:
            err = {"type": "internal", "message": f"{type(exc).__name__}: {exc}"}
        self.errors.append(err)
        super().report(exc, where)

    def note_failures(self, service: str, span: int, errors: Mapping[str, Any]) -> None:
        self.failures.add(errors, service, lookup_span(self.spans, span),
                          f" (record {self.index})")

    def pending_own(self) -> list[str]:
        """Names of this stream's emitted handlers still running."""
        return task_names(self._tasks)


def stream_seed(seed: int, index: int) -> int:
    """The seed of stream ``index`` (``random()``, ``await`` ranges, retry jitter)."""
    digest = hashlib.sha256(f"cxpar-stream:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# ---------------------------------------------------------------- input and resume

def read_records(path: str) -> Iterator[tuple[int, Any, dict[str, Any] | None]]:
    """``(index, record, None)`` per non-blank line, ``(index, None, error)`` if malformed."""
    index = 0
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield index, None, {"type": "input", "message":
                                    f"line {lineno}: not valid UTF-8 (byte {exc.start + 1})"}
                index += 1
                continue
            try:
                value = json.loads(text, parse_int=float)
            except json.JSONDecodeError as exc:
                yield index, None, {"type": "input", "message":
                                    f"line {lineno}: invalid JSON: {exc.msg} "
                                    f"(column {exc.colno})"}
                index += 1
                continue
            except (ValueError, RecursionError) as exc:
                yield index, None, {"type": "input",
                                    "message": f"line {lineno}: invalid JSON: {exc}"}
                index += 1
                continue
            yield index, value, None
            index += 1


def count_records(path: str) -> int:
    """Number of records (non-blank lines) in ``path``."""
    with open(path, "rb") as f:
        return sum(1 for raw in f if raw.strip())


# ---------------------------------------------------------------- output

class OutputWriteError(Exception):
    """Writing result lines failed: the batch stops (resume repairs the file)."""

    def __init__(self, name: str, exc: OSError) -> None:
        super().__init__(f"cannot write results to `{name}`: {exc.strerror or exc}")


class _Writer:
    """Writes each stream's lines with one ``write`` (as streams finish, or in order)."""

    def __init__(self, out: IO[str], *, ordered: bool, done: set[int],
                 name: str = "<stdout>") -> None:
        self.out = out
        self.name = name
        self.ordered = ordered
        self.done = done
        self.next = 0
        self.buffer: dict[int, str] = {}

    def put(self, index: int, text: str) -> None:
        if not self.ordered:
            self._write(text)
            return
        self.buffer[index] = text
        self._drain()

    def _drain(self) -> None:
        parts = []
        while True:
            if self.next in self.buffer:
                parts.append(self.buffer.pop(self.next))
            elif self.next not in self.done:
                break
            self.next += 1
        if parts:
            self._write("".join(parts))

    def flush_rest(self) -> None:
        """At the end (or on interrupt, in order mode): whatever is still buffered."""
        if self.buffer:
            self._write("".join(self.buffer[i] for i in sorted(self.buffer)))
            self.buffer.clear()

    def _write(self, text: str) -> None:
        try:
            self.out.write(text)
            self.out.flush()
        except OSError as exc:  # disk full, file-size limit, a closed pipe ...
            raise OutputWriteError(getattr(self.out, "name", "the output"), exc) from None


class _Sink:
    """A text stream for a stream's stderr: prefixes each report with its record."""

    def __init__(self, write: Callable[[str], None], prefix: str) -> None:
        self._write = write
        self.prefix = prefix

    def write(self, text: str) -> int:
        self._write(self.prefix + text if text else text)
        return len(text)

    def flush(self) -> None:
        pass


# ---------------------------------------------------------------- progress

class Progress:
    """Counts for the progress display and the dashboard (written by the batch loop)."""

    def __init__(self, total: int, skipped: int) -> None:
        self.total = total
        self.skipped = skipped
        self.done = 0
        self.failed = 0
        self.active = 0
        self.t0 = time.monotonic()
        #: Records finished per worker (``--executor ray``; empty for the local one).
        self.workers: dict[str, int] = {}

    def rate(self) -> float:
        dt = time.monotonic() - self.t0
        return self.done / dt if dt > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds until every record is done at the rate so far (None: no rate yet)."""
        rate = self.rate()
        if rate <= 0:
            return None
        return max(0.0, (self.total - self.skipped - self.done) / rate)

    def line(self) -> str:
        todo = self.total - self.skipped
        rate = self.rate()
        eta = self.eta() or 0.0
        skipped = f", {self.skipped} skipped (resumed)" if self.skipped else ""
        return (f"cxpar: {self.done}/{todo} records done ({self.failed} failed{skipped}), "
                f"{rate:.1f}/s, ETA {eta:.0f}s{self.worker_rates()}")

    def worker_rates(self) -> str:
        """``; workers w1 10.2/s, w2 9.8/s`` (throughput per worker), or nothing."""
        if not self.workers:
            return ""
        dt = max(time.monotonic() - self.t0, 1e-9)
        return "; workers " + ", ".join(f"{name} {n / dt:.1f}/s"
                                        for name, n in self.workers.items())


class _PlainProgress:
    """Non-TTY progress: one line at most every ``every_s`` seconds, and a last one."""

    def __init__(self, counts: Progress, err: IO[str], every_s: float = 2.0) -> None:
        self.counts = counts
        self.err = err
        self.every_s = every_s
        self.last = time.monotonic()

    def update(self) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.err.write(self.counts.line() + "\n")
            self.err.flush()

    def print(self, text: str) -> None:
        self.err.write(text)

    def close(self) -> None:
        self.err.write(self.counts.line() + "\n")
        self.err.flush()


class _RichProgress:
    """TTY progress: a rich bar (done/failed, rate, ETA) on stderr."""

    def __init__(self, counts: Progress, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RProgress

        self.counts = counts
        self.console = console
        self.bar = RProgress(TextColumn("records"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("[red]{task.fields[failed]} failed"),
                             TextColumn("{task.fields[rate]}/s"), TimeElapsedColumn(),
                             TextColumn("ETA"), TimeRemainingColumn(),
                             console=console, refresh_per_second=4, transient=False,
                             redirect_stdout=False, redirect_stderr=False)
        self.task = self.bar.add_task("records", total=counts.total - counts.skipped,
                                      failed=0, rate="0.0")
        self.bar.start()

    def update(self) -> None:
        c = self.counts
        self.bar.update(self.task, completed=c.done, failed=c.failed, rate=f"{c.rate():.1f}")

    def print(self, text: str) -> None:
        self.console.print(text, end="", markup=False, highlight=False, soft_wrap=True)

    def close(self) -> None:
        self.update()
        self.bar.stop()


# ---------------------------------------------------------------- the batch

class Batch:
    """The streams of one batch run and where their results go (``finish``)."""

    def __init__(self, factory: Callable[[Any], Any], shared: Shared, *,
                 spans: Sequence[SpanLike], sources: Mapping[str, str], writer: _Writer,
                 counts: Progress, done: set[int], stdout: IO[str],
                 report: Callable[[str], None], update: Callable[[], None],
                 monitor: Any = None) -> None:
        self.factory = factory
        self.settings = shared.settings
        self.shared = shared
        self.spans = spans
        self.sources = sources
        self.seed = shared.settings.seed
        #: Monitor for ``--dashboard`` (a :class:`cxpar.runtime.dashboard.Monitor`), if any.
        self.monitor = monitor
        self.writer = writer
        self.counts = counts
        self.done = done
        self.stdout = stdout
        self.report = report
        self.update = update
        self.active: dict[int, tuple[StreamRuntime, asyncio.Timeout]] = {}
        self.stalled = False
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.main_task: asyncio.Task[Any] | None = None

    def finish(self, index: int, text: str, failed: bool) -> None:
        self.writer.put(index, text)
        done = getattr(self.shared.provider, "stream_done", None)
        if done is not None:  # e.g. a journal: the stream's calls are settled
            done(index, failed)
        self.counts.done += 1
        if failed:
            self.counts.failed += 1
        self.update()

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.main_task = asyncio.current_task()
        if hasattr(self.loop, "on_stall"):
            self.loop.on_stall = self.on_stall
        # Never more workers than records left to run (`--streams 1000000` on 50 records).
        todo = self.counts.total - self.counts.skipped
        records = self.todo()
        workers = [asyncio.create_task(self.worker(records))
                   for _ in range(max(1, min(self.settings.streams, todo)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            raise

    def todo(self) -> Iterator[tuple[int, Any]]:
        """``(index, record)`` of every record to run, in input order: records already
        done (``--resume``) are skipped and malformed lines finished as error records."""
        assert self.settings.input is not None
        meter = self.shared.meter
        for index, record, bad in read_records(self.settings.input):
            if index in self.done:
                continue
            if meter.stop is not None:  # the budget was reached: run again with --resume
                meter.stopped_records += 1
                self.finish(index, result_lines(index, (), {"type": BUDGET_ERROR,
                                                      "message": meter.stop}), True)
                continue
            if bad is not None:
                self.report(render_error(f"record {index}: {bad['message']}", None, {}) + "\n")
                self.finish(index, result_lines(index, (), bad), True)
                continue
            yield index, record

    async def worker(self, records: Iterator[tuple[int, Any]]) -> None:
        for index, record in records:
            await self.stream(index, record)

    def on_stall(self) -> None:
        """Virtual clock stalled: stop every stream in flight (each gets an error record)."""
        self.stalled = True
        if hasattr(self.loop, "_stall_reported"):
            self.loop._stall_reported = False  # later stalls are reported too
        now = self.loop.time()
        for _rt, cm in list(self.active.values()):
            cm.reschedule(now)

    async def stream(self, index: int, record: Any) -> None:
        loop = self.loop
        rt = StreamRuntime(index, self.shared, spans=self.spans, sources=self.sources,
                           seed=stream_seed(self.seed, index), stdout=self.stdout,
                           stderr=_Sink(self.report, f"record {index}: "))  # type: ignore[arg-type]
        rt.attach(loop)
        mon = self.monitor
        if mon is not None:
            mon.runtimes.append(rt)
        self.counts.active += 1
        t0 = loop.time()
        flow = new_flow(f"record {index}")  # the program --schedule program orders
        rec = self.shared.recorder
        sspan = rec.stream(index, t0) if rec is not None else None
        if sspan is not None:
            SPAN.set(sspan)  # this worker task's context: the stream's spans hang here
        error: dict[str, Any] | None = None
        timeout_ms = self.settings.timeout_ms
        cm = rt.run_timeout(timeout_ms)
        rt.main_task = self.main_task
        self.active[index] = (rt, cm)
        try:
            DEPTH.set(0)
            FLOW.set(flow)
            factory = self.factory

            async def top() -> None:
                rt.use_program(factory)
                await factory(rt)(rt)

            stopped = await rt.run_top(top, cm, [(INPUT_EVENT, record)])
            if stopped == "flood":
                rt.cancel_all()  # its error is the stream's error record
            elif stopped == "timeout":
                if self.stalled:
                    msg = STALLED
                    error = {"type": "stalled", "message": msg}
                else:
                    msg = f"stream timed out after {fmt_num(float(timeout_ms or 0))} ms"
                    error = {"type": "timeout", "message": msg}
                notes = still_running(rt.pending_own())
                rt.error_count += 1
                self.report(render_error(f"record {index}: {msg}", None, {}, notes=notes,
                                         code=code_of(msg))
                            + "\n")
                rt.cancel_all()
        finally:
            del self.active[index]
            self.counts.active -= 1
            self.shared.flow_done(flow)
            if mon is not None:
                mon.stream_done(rt)
        if error is None and rt.errors:
            error = dict(rt.errors[0])
            if len(rt.errors) > 1:
                error["count"] = len(rt.errors)
        if error is None and rt.budget_stopped:
            # Calls were refused: the record is unfinished and --resume runs it again.
            error = {"type": BUDGET_ERROR, "message": self.shared.meter.stop or "budget reached",
                     "calls": rt.budget_stopped}
        if rec is not None:
            rec.end_stream(sspan, t0, loop.time(), error["type"] if error else None,
                           error["message"] if error else None)
        self.finish(index, result_lines(index, rt.outputs, error), error is not None)


def run_batch(factory: Callable[[Any], Any], spans: Sequence[SpanLike],
              sources: Mapping[str, str], settings: RunSettings, *,
              provider: Provider | None = None, stdout: IO[str] | None = None,
              stderr: IO[str] | None = None, critical: Sequence[str] = ()) -> int:
    """Run ``factory`` once per record of ``settings.input``; 0 all ok, 3 any error, 130 ^C.

    ``provider`` defaults to the built-in one ``settings`` names; ``critical``: the
    services on the static critical path, for ``settings.dashboard``.
    """
    s = settings
    if s.input is None:
        raise ValueError("run_batch needs settings.input (the records file)")
    check_input_file(s.input)
    if s.output is None:
        return _run_batch(factory, spans, sources, s, provider, stdout, stderr, critical)
    check_not_input(s.input, s.output)
    with OutputLock(s.output):
        return _run_batch(factory, spans, sources, s, provider, stdout, stderr, critical)


def _run_batch(factory: Callable[[Any], Any], spans: Sequence[SpanLike],
               sources: Mapping[str, str], s: RunSettings, provider: Provider | None,
               stdout: IO[str] | None, stderr: IO[str] | None,
               critical: Sequence[str]) -> int:
    assert s.input is not None
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    if provider is None:
        provider = build_provider(s)
    recorder = make_recorder(s, Meter(), provider)
    shared = Shared(s, provider, recorder=recorder)
    total = count_records(s.input)
    done: set[int] = set()
    prior_failed = 0
    if s.output is not None and s.resume:
        note = sidecar_check(s.output, s.input)
        if note:
            err.write(f"cxpar: {note}\n")
        scan = scan_output(s.output)
        done, prior_failed = scan.done, len(scan.failed)
        if scan.problems:
            err.write(_repaired(s.output, scan.problems, scan.redo))
    skipped = sum(1 for i in done if i < total)
    counts = Progress(total, skipped)
    if s.output is not None:
        sink: IO[str] = open(s.output, "a" if s.resume else "w",  # noqa: SIM115
                             encoding="utf-8", newline="\n")
        if not s.resume:  # after the truncation: a crash between leaves nothing stale
            sidecar_write(s.output, s.input)
        prints: IO[str] = out
    else:
        sink = out
        prints = err  # stdout carries the JSONL results: `print` goes to stderr
    writer = _Writer(sink, ordered=s.ordered, done=done,
                     name=s.output if s.output is not None else "<stdout>")

    from .dashboard import console_writer

    console = console_writer(err)
    live: Any = None
    progress: Any = None
    mon: Any = None
    if s.dashboard:
        from .dashboard import Monitor

        mon = Monitor(recorder, limiter=shared.limiter, breakers=shared.breakers,
                      adaptive=shared.resilience.limiters,
                      critical=critical, batch=counts)
        live = mon.live(console)
        report: Callable[[str], None] = live.print
        update: Callable[[], None] = _noop
    elif s.progress:
        progress = _RichProgress(counts, console) if console.is_terminal \
            else _PlainProgress(counts, err)
        report = progress.print
        update = progress.update
    else:
        def report(text: str) -> None:
            err.write(text)
        update = _noop

    # streams on other executors keep their clocks there: the driver's loop is real
    loop = new_loop(s.clock if s.executor == "local" else "real", guard_s=s.guard_s)
    if mon is not None:
        mon.loop = loop
    batch = Batch(factory, shared, spans=spans, sources=sources, writer=writer,
                  counts=counts, done=done, stdout=prints, report=report, update=update,
                  monitor=mon)
    executor = executor_for(s, sources, total - skipped)
    code = 0
    failure: OutputWriteError | ExecutorError | None = None
    try:
        with gc_tuned(), asyncio.Runner(loop_factory=lambda: loop) as runner, \
                contextlib.ExitStack() as stack:
            term = Termination()
            if recorder is not None:
                recorder.start_run(executor.now(loop), "batch")
            try:
                executor.start()  # first: starting Ray installs a SIGTERM handler of its own
                term = stack.enter_context(sigterm_cancels(lambda: batch.main_task))
                if live is not None:
                    live.start()
                runner.run(executor.run(batch))
            except KeyboardInterrupt:
                code = 130
            except asyncio.CancelledError:
                if not term.received:
                    raise
                code = EXIT_TERMINATED
            except (OutputWriteError, ExecutorError) as exc:
                failure = exc
            finally:
                if recorder is not None:
                    recorder.end_run(executor.now(loop))
                executor.close()
                if live is not None:
                    live.stop()
                if progress is not None:
                    progress.close()
                if failure is None:
                    try:
                        writer.flush_rest()
                    except OutputWriteError as exc:
                        failure = exc
    finally:
        if sink is not out:
            with contextlib.suppress(OSError):  # what could not be written stays unwritten
                sink.close()
        try:
            out.flush()
        except (OSError, ValueError):
            pass
    if failure is not None or code in (130, EXIT_TERMINATED):
        if recorder is not None:
            recorder.close()
    if failure is not None:
        exit_code = getattr(failure, "exit_code", 3)
        notes = [f"{counts.done} records written; run again with --resume to finish"] \
            if exit_code == 3 else []
        err.write(render_error(str(failure), None, {}, notes=notes) + "\n")
        return exit_code
    if code in (130, EXIT_TERMINATED):
        err.write(render_error(
            "interrupted" if code == 130 else "terminated (SIGTERM)", None, {},
            notes=[f"{counts.done} records written; run again with --resume to finish"
                   if s.output else f"{counts.done} records written"]) + "\n")
        return code
    failures = shared.failures
    if failures:
        err.write(failures.render(s.strict) + "\n")
    if s.stats:
        line = executor.summary()
        if line:
            err.write(line + "\n")
    written = finish_recorder(recorder, s, err)
    return budget_outcome(shared.meter, 3 if counts.failed or prior_failed or not written
                          or (s.strict and failures) else 0, err)


def _noop() -> None:
    pass


def _repaired(output: str, problems: Sequence[str], redo: set[int]) -> str:
    """What ``--resume`` removed from ``output`` (shown on stderr)."""
    shown = "".join(f"  {p}\n" for p in problems[:10])
    more = f"  and {len(problems) - 10} more\n" if len(problems) > 10 else ""
    again = f"; {len(redo)} record(s) run again" if redo else ""
    return (f"cxpar: `{output}`: removed {len(problems)} damaged or incomplete "
            f"part(s){again}:\n{shown}{more}")
