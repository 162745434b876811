"""The program-level runtime: event bus, emits, entities, quiescence, error reports."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import random
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from cxpar.lang import SERVICE_STEMS

from .breaker import CircuitBreaker
from .bus import Bus, Handler, Router
from .coordinator import DEPTH, run_await, run_service, task_handler
from .coordinator import _label as handler_label
from .cost import Meter, meter_for
from .endpoints import Endpoints, Route, as_endpoints, endpoints_of
from .errors import (
    NO_SPAN_ID,
    CxRuntimeError,
    SpanLike,
    Stopped,
    code_of,
    lookup_span,
    render_error,
    resource_error,
    still_running,
)
from .failures import FailureLog
from .flows import FLOW, new_flow
from .providers.base import Provider
from .resilience import Resilience
from .settings import RunSettings
from .tracing import SPAN, Recorder, Span, label_of
from .values import Instance, to_str, type_name

__all__ = ["Runtime", "ClassDef", "PLUGIN_SERVICES", "STALLED", "service"]

#: The error of a run whose virtual clock stalled (the stall guard fired).
STALLED = ("virtual clock stalled: work kept running without virtual time advancing "
           "(an endless loop of emits?)")


#: ``new`` nested inside ``realize`` (in one task) at most this deep: far below Python's
#: recursion limit, also in a standalone module.
MAX_NEW_NESTING = 200


#: Plug-in services: name → (stem, implementation or None to use the provider).
PLUGIN_SERVICES: dict[str, tuple[str, Callable[..., Awaitable[Any]] | None]] = {}


def service(name: str, stem: str | None = None) -> Callable[[Any], Any]:
    """Decorator registering a plug-in service ``async def impl(request, context)``."""

    def deco(fn: Any) -> Any:
        PLUGIN_SERVICES[name] = (stem or name, fn)
        return fn

    return deco


@dataclass(slots=True)
class ClassDef:
    """An entity class as data: handlers in source order, realize optional."""

    name: str
    base: str | None
    realize: Callable[..., Awaitable[Any]] | None
    handlers: list[tuple[str, Handler]]


def expire_now(cm: asyncio.Timeout, loop: asyncio.AbstractEventLoop) -> None:
    """Make the ``asyncio.timeout`` ``cm`` fire now (unless it already did)."""
    if not cm.expired():
        with contextlib.suppress(RuntimeError):  # left already: nothing to end
            cm.reschedule(loop.time())


def task_names(tasks: Iterable[asyncio.Task[Any]]) -> list[str]:
    """Sorted names of the unfinished ``tasks`` (their coroutines' qualified names)."""
    out = []
    for t in tasks:
        if t.done():
            continue
        coro = t.get_coro()
        name = getattr(coro, "__qualname__", None) or repr(coro)
        out.append(name.replace("<locals>.", ""))
    return sorted(out)


class Runtime:
    """State of one running CX program. Generated code receives it as ``rt``."""

    def __init__(self, settings: RunSettings | None = None, *,
                 spans: Sequence[SpanLike] = (), sources: Mapping[str, str] | None = None,
                 provider: Provider | None = None, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None, recorder: Any = None,
                 resilience: Resilience | None = None) -> None:
        settings = settings if settings is not None else RunSettings()
        provider = as_endpoints(provider, settings)
        #: Every option of this run (docs/cli.md "Settings").
        self.settings = settings
        self.spans = spans
        self.sources: Mapping[str, str] = sources or {}
        self.provider: Provider = provider
        #: The endpoints calls are routed to (docs/runtime.md "Endpoints and models").
        self.endpoints: Endpoints = endpoints_of(provider)  # type: ignore[assignment]
        self.stdout: IO[str] = stdout if stdout is not None else sys.stdout
        self.stderr: IO[str] = stderr if stderr is not None else sys.stderr
        self.bus: Router = Bus()
        self.classes: dict[str, ClassDef] = {}
        self.services: dict[str, str] = dict(SERVICE_STEMS)
        if resilience is None:
            resilience = Resilience(settings.breaker, settings.limits)
        #: Breakers, adaptive limits, retry budgets (issue 9; docs/runtime.md "Resilience").
        self.resilience = resilience
        self.limiter = resilience.global_limiter(settings.max_concurrency)
        #: Calls may wait for a slot (a global or adaptive limit): branches then track
        #: their queue waits, which never count toward their timeouts (rule 45).
        self.queueing = self.limiter is not None or resilience.may_queue(provider)
        self.recorder: Recorder | None = recorder
        #: Critical path per call site ``(line, col)`` (the compiled program's
        #: ``__cx_paths__``): orders one program's waiting calls under a limit.
        self.call_paths: Mapping[tuple[int, int], Any] = {}
        self._path_of: dict[int, Any] = {}
        #: Tokens, cost and budget of the run (batch streams share one).
        self.meter: Meter = meter_for(settings, self.provider)
        #: Service calls of this runtime refused because the budget was reached.
        self.budget_stopped = 0
        self.error_count = 0
        #: Failures recorded only in `_errors` (rule 6: summarised at the end of the run).
        self.failures = FailureLog()
        #: Emitted handlers finished so far (for the live dashboard).
        self.handled = 0
        self.reseed(settings.seed)
        self._breakers: dict[str, CircuitBreaker] = resilience.breakers
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inflight = 0
        #: Bumped by :meth:`cancel_all`; queued plain-callback handlers check it.
        self._epoch = 0
        self._top_done = False
        self._quiet: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self.t_start = 0.0
        #: Why the program is ending early ("timeout", "interrupt", "flood"), once known.
        self.stop_reason: str | None = None
        #: Real-clock deadline (``time.monotonic()``) of ``--timeout``, checked by loops
        #: and emits so that a busy program still ends on time.
        self.deadline: float | None = None
        #: The task whose cancellation (Ctrl-C) ends the program.
        self.main_task: asyncio.Task[Any] | None = None
        #: Ends the program's wait (reschedules its timeout to now); set by its runner.
        self.on_stop: Callable[[], None] | None = None
        self.flood_limit = settings.flood_limit
        self._emits = 0
        #: Service calls, awaits and ``new`` started (points where CX code may suspend):
        #: a loop that sees this change is not keeping the event loop busy.
        self.suspensions = 0
        self._realizing: dict[asyncio.Task[Any] | None, int] = {}

    # ------------------------------------------------------------ setup
    def reseed(self, seed: int) -> None:
        """Seed ``random()``, ``await`` ranges and retry jitter (a batch stream has its own)."""
        self.seed = seed
        self._rand = random.Random(seed).random
        self._jitter_rng = random.Random(f"jitter:{seed}")
        self._await_rng = random.Random(f"await:{seed}")

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Bind to ``loop`` (default: the running loop); ``now()`` counts from here."""
        self.loop = loop or asyncio.get_running_loop()
        self.t_start = self.loop.time()

    def use_router(self, router: Router) -> None:
        """Route events with ``router`` (e.g. the llvm backend's); before any subscription."""
        if self.bus.names():
            raise RuntimeError("use_router() must be called before the first subscription")
        self.bus = router

    def on(self, event: str, fn: Handler) -> None:
        """Subscribe a top-level handler (call in source order before the top level runs)."""
        self.bus.subscribe(event, fn, None)

    def define_class(self, name: str, base: str | None,
                     realize: Callable[..., Awaitable[Any]] | None,
                     handlers: Iterable[tuple[str, Handler]]) -> None:
        """Register an entity class (hoisted: before the top level runs)."""
        self.classes[name] = ClassDef(name, base, realize, list(handlers))

    def register_service(self, name: str, stem: str | None = None) -> None:
        """Add a service name handled by the provider (a plug-in name)."""
        self.services[name] = stem or name

    def stem(self, name: str) -> str | None:
        s = self.services.get(name)
        if s is None and name in PLUGIN_SERVICES:
            s = PLUGIN_SERVICES[name][0]
        return s

    def plugin_impl(self, name: str) -> Callable[..., Awaitable[Any]] | None:
        entry = PLUGIN_SERVICES.get(name)
        return entry[1] if entry is not None and name not in SERVICE_STEMS else None

    def use_program(self, factory: Any) -> None:
        """Take the scheduling estimates a compiled program carries (``__cx_paths__``,
        also through wrappers that set ``__wrapped__``)."""
        while not hasattr(factory, "__cx_paths__") and hasattr(factory, "__wrapped__"):
            factory = factory.__wrapped__
        self.call_paths = getattr(factory, "__cx_paths__", None) or {}
        self._path_of.clear()

    def call_path(self, span: int) -> Any:
        """The critical path headed by the call at span id ``span`` (None if unknown)."""
        try:
            return self._path_of[span]
        except KeyError:
            pass
        where = lookup_span(self.spans, span) if self.call_paths else None
        path = self.call_paths.get((where[1], where[2])) if where is not None else None
        self._path_of[span] = path
        return path

    def breaker(self, name: str, route: Route | None = None) -> CircuitBreaker | None:
        """The breaker of service ``name`` on ``route``'s endpoint and model (default:
        the default endpoint), or None if breakers are off."""
        ep = route.endpoint if route is not None else \
            self.endpoints.table[self.endpoints.default]
        key = self.resilience.breaker_key(ep.provider, name)
        if route is not None and route.chosen and route.model:
            key += f"/{route.model}"
        elif route is not None and ep.name not in (self.endpoints.default, "sim") and \
                "@" not in key:
            key += f"@{ep.name}"
        return self.resilience.breaker(key, self._breakers)

    # ------------------------------------------------------------ builtins
    def print(self, *args: Any, span: int = NO_SPAN_ID) -> None:
        """``print(a, b)``: printed forms joined by one space, then a newline.

        If the reader of stdout goes away (``cxpar run f.cx | head``), later output is
        dropped quietly instead of failing every handler that prints.
        """
        try:
            text = " ".join([to_str(a) for a in args]) + "\n"
        except CxRuntimeError as exc:
            raise exc.at(span) from None
        try:
            self.stdout.write(text)
        except UnicodeEncodeError as exc:
            bad = text[exc.start:exc.end]
            raise CxRuntimeError(
                f"cannot print {ascii(bad)[1:-1]}: not valid Unicode text (a lone surrogate "
                "from a model answer or a record?); the output encoding cannot write it", span) from None
        except BrokenPipeError:
            import os as _os

            self.stdout = open(_os.devnull, "w")  # noqa: SIM115 - lives as long as the run
        except OSError as exc:  # a full disk, a file-size limit: say so once, exit 3
            import os as _os

            self.stdout = open(_os.devnull, "w")  # noqa: SIM115 - lives as long as the run
            self.report(CxRuntimeError(f"cannot write the program's output (stdout): "
                                       f"{exc.strerror or exc}; later output is dropped",
                                       span, code="CX500"))

    def now(self) -> float:
        """Milliseconds since program start on the active clock."""
        return round((self.loop.time() - self.t_start) * 1000, 6)

    def random(self) -> float:
        """A seeded random number in [0, 1)."""
        return self._rand()

    def call(self, fn: Any, args: Sequence[Any], span: int = NO_SPAN_ID) -> Any:
        """Call a value that is not a known builtin name: always a runtime error."""
        raise CxRuntimeError(f"cannot call {type_name(fn)}: it is not a function", span)

    # ------------------------------------------------------------ ending early
    def should_stop(self) -> bool:
        """Whether the program is ending: its real-clock deadline passed, Ctrl-C was
        pressed, or an earlier check said so. Code that can keep the event loop busy
        (loops, emits) calls this now and then and raises :class:`Stopped`."""
        if self.stop_reason is None:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.stop("timeout")
            else:
                task = self.main_task
                if task is not None and task.cancelling():
                    self.stop("interrupt")
        return self.stop_reason is not None

    def stop(self, reason: str) -> None:
        """End the program now: drop queued handlers, cancel running ones, stop waiting."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.cancel_all()
        if self.on_stop is not None and reason != "interrupt":  # Ctrl-C cancels the owner
            self.on_stop()

    def _flood(self, name: str, span: int) -> None:
        self.report(CxRuntimeError(
            f"event flood: more than {self.flood_limit} handlers queued or running at once; "
            f"`{name}` is emitted faster than its handlers finish "
            "(set `flood_limit` in [run] of cxpar.toml or CXPAR_FLOOD_LIMIT to change "
            "the limit)", span))
        self.stop("flood")
        raise Stopped

    # ------------------------------------------------------------ emit
    def emit(self, name: str, payload: Any = None, span: int = NO_SPAN_ID) -> None:
        """Queue every subscriber of ``name`` with its own copy of ``payload`` (rules 1, 14)."""
        subs = self.bus.subscribers(name)
        if not subs:
            return
        self._emits += 1
        if self._inflight + len(subs) > self.flood_limit:
            self._flood(name, span)
        if self.stop_reason is not None or (not self._emits & 0x3FF and self.should_stop()):
            raise Stopped
        if payload is None:
            payload = {}
        loop = self.loop
        create = loop.create_task
        tasks = self._tasks
        done = self._task_done
        obj = type(payload) is dict
        shared: Any = None  # one copy for every handler that only reads its event
        flow = FLOW.get()
        spawn = flow is None or flow.root  # the top level's emits start programs of their own
        rec = self.recorder
        traced = rec is not None and rec.keep_spans  # each invocation gets a span
        parent = SPAN.get() if traced else None
        now = loop.time() if traced else 0.0
        for fn, inst in subs:
            if not obj:
                ev = payload
            elif getattr(fn, "__cx_pure_event__", False):
                if shared is None:
                    shared = dict(payload)
                ev = shared
            else:
                ev = dict(payload)
            sync = getattr(fn, "__cx_sync__", None)
            if sync is not None:
                # A handler that never suspends runs as a plain callback on the same FIFO
                # ready queue a task's first step would use (rule 33): no task needed.
                if traced:
                    loop.call_soon(self._run_sync_traced, rec, sync, fn,  # type: ignore[arg-type]
                                   inst, ev, self._epoch, name, parent, now)
                else:
                    loop.call_soon(self._run_sync, sync, inst, ev, self._epoch)
                continue
            coro = self._traced(rec, fn, inst, ev, name, parent, now,  # type: ignore[arg-type]
                                awaited=False) if traced else fn(self, inst, ev)
            if spawn:
                ctx = contextvars.copy_context()
                ctx.run(FLOW.set, new_flow(name))
                t: asyncio.Task[Any] = create(coro, context=ctx)
            else:
                t = create(coro)
            tasks.add(t)
            t.add_done_callback(done)
        self._inflight += len(subs)

    async def _traced(self, rec: Recorder, fn: Any, inst: Any, ev: Any, event: str,
                      parent: Span | None, trigger: float, *, awaited: bool) -> Any:
        """Run one handler invocation under its own span (spans on)."""
        loop = self.loop
        t0 = loop.time()
        span = rec.handler_span(fn, inst, event, parent, t0, awaited=awaited,
                                trigger=trigger)
        SPAN.set(span)  # this task's own context
        err: str | None = "cancelled"
        msg: str | None = None
        try:
            result = await fn(self, inst, ev)
            err = None
            return result
        except Exception as exc:
            err = "error"
            msg = exc.message if isinstance(exc, CxRuntimeError) else repr(exc)
            raise
        finally:
            t1 = loop.time()
            rec.end(span, t1, err, msg)
            rec.invocation_done(label_of(fn), t0, t1, err is not None)

    def _run_sync_traced(self, rec: Recorder, sync: Any, fn: Any, inst: Any, ev: Any,
                         epoch: int, event: str, parent: Span | None,
                         trigger: float) -> None:
        """:meth:`_run_sync` under a span (spans on)."""
        if epoch != self._epoch:
            self._run_sync(sync, inst, ev, epoch)
            return
        t0 = self.loop.time()
        span = rec.handler_span(fn, inst, event, parent, t0, awaited=False, trigger=trigger)
        SPAN.set(span)  # the callback's own context copy
        before = self.error_count
        try:
            self._run_sync(sync, inst, ev, epoch)
        finally:
            failed = self.error_count > before
            t1 = self.loop.time()
            rec.end(span, t1, "error" if failed else None)
            rec.invocation_done(label_of(fn), t0, t1, failed)

    def _run_sync(self, fn: Any, inst: Any, ev: Any, epoch: int) -> None:
        """Run one emitted handler that cannot suspend (see :meth:`emit`)."""
        try:
            if epoch == self._epoch:  # not cancelled by `cancel_all` since it was queued
                fn(self, inst, ev)
        except Exception as exc:  # noqa: BLE001 - aborts this handler only (rule 6)
            self.report(exc, f"in handler `{handler_label(fn)}`")
        finally:
            self._inflight -= 1
            self.handled += 1
            if self._inflight == 0 and self._quiet is not None and not self._quiet.done():
                self._quiet.set_result(None)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._inflight -= 1
        self.handled += 1
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                self.report(exc, f"in handler `{task_handler(task)}`")
        if self._inflight == 0 and self._quiet is not None and not self._quiet.done():
            self._quiet.set_result(None)

    async def deliver_items(self, payload: dict[str, Any],
                            items: Iterable[tuple[str, Mapping[str, Any] | None]]) -> None:
        """Step 4: each item's subscribers get a fresh copy (+ extra), one item at a time."""
        create = self.loop.create_task
        rec = self.recorder
        traced = rec is not None and rec.keep_spans
        for event, extra in items:
            subs = self.bus.subscribers(event)
            if not subs:
                continue
            tasks: list[asyncio.Task[Any]] = []
            shared: dict[str, Any] | None = None
            for fn, inst in subs:
                if shared is not None and getattr(fn, "__cx_pure_event__", False):
                    ev = shared
                else:
                    ev = dict(payload)
                    if extra:
                        ev.update(extra)
                    if getattr(fn, "__cx_pure_event__", False):
                        shared = ev
                if traced:
                    tasks.append(create(self._traced(
                        rec, fn, inst, ev, event, SPAN.get(),  # type: ignore[arg-type]
                        self.loop.time(), awaited=True)))
                else:
                    tasks.append(create(fn(self, inst, ev)))
            try:
                await asyncio.wait(tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                raise
            for t in tasks:
                if not t.cancelled() and t.exception() is not None:
                    self.report(t.exception(),  # type: ignore[arg-type]
                                f"in handler `{task_handler(t)}` (`handlers` item `{event}`)")

    # ------------------------------------------------------------ services
    def await_(self, span: int, request: dict[str, Any]) -> Coroutine[Any, Any, dict[str, Any]]:
        """``await { ... }`` with no branches or ``handlers`` items: a plain timer."""
        self.suspensions += 1
        return run_await(self, span, request)

    def service(self, name: str, span: int, request: Any,
                branches: Sequence[tuple[str, str, Mapping[str, Any] | None]] = (),
                items: Sequence[tuple[str, Mapping[str, Any] | None]] = (), *,
                timeout: Any = None, retries: Any = None, priority: Any = None,
                concurrency: Any = None, caller: Instance | None = None,
                **degrade: Any) -> Coroutine[Any, Any, dict[str, Any]]:
        """A service call (SPEC §4.4); see docs/runtime.md. Awaitable: returns the
        ``run_service`` coroutine itself (no wrapper coroutine frame per call).
        ``degrade``: ``fallback=value`` or ``fallback_event="a.b"`` (the reserved prop
        ``fallback``; absent = no fallback)."""
        self.suspensions += 1
        return run_service(self, name, span, request, branches, items, timeout=timeout,
                           retries=retries, priority=priority, concurrency=concurrency,
                           caller=caller, **degrade)

    # ------------------------------------------------------------ entities
    def _chain(self, name: str, span: int) -> list[ClassDef]:
        chain: list[ClassDef] = []
        cur: str | None = name
        while cur is not None:
            cd = self.classes.get(cur)
            if cd is None or cd in chain:
                raise CxRuntimeError(f"unknown entity `{cur}`", span)
            chain.append(cd)
            cur = cd.base
        chain.reverse()
        return chain

    async def new(self, cls: str, args: Sequence[Any] = (), span: int = NO_SPAN_ID) -> Instance:
        """``new Cls(args)``: copy fields, subscribe handlers base-first, await realize."""
        self.suspensions += 1
        chain = self._chain(cls, span)
        arg = args[0] if args else None
        if arg is None:
            fields: dict[str, Any] = {}
        elif type(arg) is dict:
            fields = dict(arg)
        elif type(arg) is Instance:
            fields = dict(arg.fields)
        else:
            raise CxRuntimeError(
                f"`new {cls}` expects an object, got {type_name(arg)}", span)
        inst = Instance(cls, fields)
        sub = self.bus.subscribe
        realize = None
        for cd in chain:
            for event, fn in cd.handlers:
                sub(event, fn, inst)
            if cd.realize is not None:
                realize = cd.realize
        if realize is not None:
            task = asyncio.current_task()
            depth = self._realizing.get(task, 0)
            if depth >= MAX_NEW_NESTING:
                raise CxRuntimeError(
                    f"`new {cls}` nested {depth} deep inside `realize` (does `realize` "
                    f"create another `{cls}`?)", span)
            self._realizing[task] = depth + 1
            try:
                await realize(self, inst, *args[1:])
            except Exception as exc:  # noqa: BLE001 - aborts realize only (rule 6)
                self.report(exc, f"in `realize` of `{cls}`")
            finally:
                if depth:
                    self._realizing[task] = depth
                else:
                    del self._realizing[task]
        return inst

    # ------------------------------------------------------------ errors
    def report(self, exc: BaseException, where: str | None = None) -> None:
        """Report one runtime error on stderr with its code, CX span and ``where`` it
        happened (e.g. "handler `on a.b`"); the exit code becomes 3."""
        if isinstance(exc, Stopped):
            return
        exc = self.cx_error(exc)
        self.error_count += 1
        if isinstance(exc, CxRuntimeError):
            text = render_error(exc.message, exc.span(self.spans), self.sources,
                                code=exc.code, notes=[where] if where else ())
        else:
            text = f"error: internal error in the runtime: {type(exc).__name__}: {exc}\n" \
                   "   = note: please report this at the cxpar issue tracker"
            if os.environ.get("CXPAR_DEBUG"):
                text += "\n" + "".join(traceback.format_exception(exc))
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def cx_error(self, exc: BaseException) -> BaseException:
        """``exc``, or the CX runtime error it stands for (out of memory, recursion)."""
        return resource_error(exc, self.sources)

    def warn_attempt(self, exc: BaseException, attempt: int, attempts: int,
                     where: str | None = None) -> None:
        """A runtime error in an attempt that will be retried: a warning, not an error
        (rule 6: only the final outcome counts)."""
        if not isinstance(exc, CxRuntimeError):
            self.report(exc, where)
            return
        text = render_error(f"attempt {attempt} of {attempts} failed: {exc.message}; "
                            "retrying", exc.span(self.spans), self.sources,
                            level="warning", code=exc.code,
                            notes=[where] if where else ())
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def note_failures(self, service: str, span: int, errors: Mapping[str, Any]) -> None:
        """Count a call's ``_errors`` for the end-of-run summary (rule 6)."""
        self.failures.add(errors, service, lookup_span(self.spans, span))

    def pending(self) -> list[str]:
        """Names of handlers and calls still running (for timeout/interrupt reports)."""
        try:
            cur = asyncio.current_task(self.loop)
        except RuntimeError:
            cur = None
        return [name for name in task_names(t for t in asyncio.all_tasks(self.loop)
                                            if t is not cur)
                if not name.endswith("run_main")]

    # ------------------------------------------------------------ program run
    def run_timeout(self, timeout_ms: float | None) -> asyncio.Timeout:
        """The timeout of a whole run of ``timeout_ms`` (None: none); on the real clock
        also the deadline that long-running loops check (they keep ``cm`` from firing)."""
        if timeout_ms is not None and not hasattr(self.loop, "on_stall"):
            self.deadline = time.monotonic() + timeout_ms / 1000
        return asyncio.timeout(None if timeout_ms is None else timeout_ms / 1000)

    async def run_top(self, top: Callable[[], Awaitable[Any]], timeout: asyncio.Timeout,
                      events: Sequence[tuple[str, Any]] = (),
                      where: str | None = "at the top level") -> str | None:
        """Run one program (or stream) under ``timeout``: its top level ``top()`` (an
        error there is reported with ``where`` and ends only the top level), then
        ``system.start {}`` and ``events``, until quiescence. None when it finished,
        ``"flood"`` or ``"timeout"`` when it was stopped (the caller reports that and
        cancels what still runs). The caller sets :attr:`main_task`."""
        loop = self.loop
        self.on_stop = lambda: expire_now(timeout, loop)
        timed_out = False
        try:
            async with timeout:
                try:
                    await top()
                except Exception as exc:  # noqa: BLE001 - aborts the top level only
                    self.report(exc, where)
                self._top_done = True
                with contextlib.suppress(Stopped):  # ending early (flood, deadline)
                    self.emit("system.start", {})
                    for name, payload in events:
                        self.emit(name, payload)
                await self.quiesce()
        except TimeoutError:
            timed_out = True
        finally:
            self.on_stop = None
        if self.stop_reason == "flood":
            return "flood"
        if timed_out or self.stop_reason == "timeout":
            return "timeout"
        return None

    async def run_main(self, main: Callable[[Runtime], Awaitable[Any]], *,
                       timeout_ms: float | None = 600_000) -> int:
        """Run the top level, emit ``system.start``, wait for quiescence; exit code 0/3."""
        if self.loop is None:
            self.attach()
        loop = self.loop
        DEPTH.set(0)
        FLOW.set(new_flow("top level", root=True))
        stalled = False
        with_timeout = self.run_timeout(timeout_ms)

        def on_stall() -> None:
            nonlocal stalled
            stalled = True
            with_timeout.reschedule(loop.time())

        if hasattr(loop, "on_stall"):
            loop.on_stall = on_stall
        rec = self.recorder
        if rec is not None and rec.root is not None:
            SPAN.set(rec.root)
        self.main_task = asyncio.current_task()
        stopped = await self.run_top(functools.partial(main, self), with_timeout)
        if stopped == "flood":
            self.cancel_all()  # reported where it happened
        elif stopped == "timeout":
            pend = self.pending()
            if stalled:
                msg = STALLED
            else:
                msg = f"program timed out after {to_str(float(timeout_ms or 0))} ms"
            self.stderr.write(render_error(msg, None, {}, notes=still_running(pend),
                                           code=code_of(msg))
                              + "\n")
            self.error_count += 1
            self.cancel_all()
        return 3 if self.error_count else 0

    async def quiesce(self) -> None:
        """Wait until no emitted handler is running (e.g. after each REPL entry)."""
        while self._inflight and self.stop_reason is None:
            self._quiet = self.loop.create_future()
            await self._quiet

    def cancel_all(self) -> None:
        """Cancel every running emitted handler (and, through them, what they await)."""
        self._epoch += 1  # queued handlers that cannot suspend will not run
        for t in list(self._tasks):
            t.cancel()
