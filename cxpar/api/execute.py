"""Running one isolated stream (and batches of them) inside the caller's event loop.

This is the one place the API touches the runtime: a stream is a
:class:`~cxpar.runtime.streams.StreamRuntime` over the session's
:class:`~cxpar.runtime.streams.Shared` services, run as its own task (so its context
variables never leak into the caller's), with per-run capture of outputs, printed lines,
errors and statistics, and live events for a ``listener``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from cxpar.journal.keys import SINGLE_STREAM
from cxpar.runtime.batchfile import result_lines
from cxpar.runtime.coordinator import DEPTH
from cxpar.runtime.flows import FLOW, new_flow
from cxpar.runtime.scheduler import STALLED
from cxpar.runtime.streams import INPUT_EVENT, OUTPUT_EVENT, StreamRuntime, stream_seed
from cxpar.runtime.tracing import Recorder
from cxpar.runtime.values import fmt_num, to_json

from .result import RunResult

if TYPE_CHECKING:
    from cxpar.runtime.settings import RunSettings

    from .program import Listener, Program
    from .session import Runtime

__all__ = ["batch_lines", "execute"]


def plain(value: Any) -> Any:
    """A CX value as JSON data (for events); ``repr`` text if it cannot be."""
    try:
        return json.loads(to_json(value))
    except Exception:  # noqa: BLE001 - an event must never fail the run
        return repr(value)


# ---------------------------------------------------------------- observation

class _Notify:
    """Sends events to a listener with the run's time (ms since start) added."""

    def __init__(self, listener: Listener | None, loop: asyncio.AbstractEventLoop) -> None:
        self.listener = listener
        self.loop = loop
        self.t0 = loop.time()

    def ms(self, t: float) -> float:
        return round((t - self.t0) * 1000, 3)

    def __call__(self, kind: str, **data: Any) -> None:
        if self.listener is None:
            return
        data.setdefault("t_ms", self.ms(self.loop.time()))
        try:
            self.listener({"type": kind, **data})
        except Exception:  # noqa: BLE001, S110 - a broken listener must not fail the run
            pass


class _ObservedProvider:
    """The session's provider, with a ``call.start``/``call.end`` event per request."""

    def __init__(self, inner: Any, notify: _Notify) -> None:
        self._inner = inner
        self._notify = notify
        self._ids = itertools.count(1)

    def __getattr__(self, name: str) -> Any:  # endpoint, capacity, services, …
        return getattr(self._inner, name)

    async def call(self, service: str, request: dict[str, Any], context: Any) -> Any:
        n = next(self._ids)
        notify = self._notify
        t0 = notify.loop.time()
        notify("call.start", call=n, service=service, attempt=getattr(context, "attempt", 1),
               request=plain(request))
        try:
            value = await self._inner.call(service, request, context)
        except BaseException as exc:
            error = "cancelled (timeout)" if isinstance(exc, asyncio.CancelledError) \
                else f"{type(exc).__name__}: {exc}"
            notify("call.end", call=n, service=service, ok=False, error=error,
                   ms=notify.ms(notify.loop.time()) - notify.ms(t0),
                   usage=reported_usage(context))
            raise
        notify("call.end", call=n, service=service, ok=True, answer=plain(value),
               ms=notify.ms(notify.loop.time()) - notify.ms(t0), usage=reported_usage(context))
        return value


class _RunRecorder(Recorder):
    """The run's statistics, plus ``branch`` and ``join`` events: from finished spans
    with a span-tree recorder (one that has ``listen``), else from the aggregate
    recorder's ``span``/``call`` reports."""

    #: What prices reported usage (a span-tree recorder's cost meter), if any.
    meter: Any = None

    def __init__(self, notify: _Notify) -> None:
        tree = hasattr(Recorder, "listen")
        super().__init__(keep_spans=tree)
        self._notify = notify
        if tree:
            me: Any = self  # either recorder's methods, typed for both
            me.listen(self._span_ended)

    def _span_ended(self, span: Any) -> None:
        n = self._notify
        parent = span.parent
        if parent is None or parent.kind not in ("join", "call"):
            return
        if span.kind == "handler" and parent.kind == "join":
            n("branch", name=str(span.attrs.get("handler", span.name)),
              event=span.attrs.get("event"), start_ms=n.ms(span.t0), end_ms=n.ms(span.t1),
              error=span.err)
        elif span.kind == "join":
            n("join", service=str(parent.attrs.get("service", parent.name)),
              start_ms=n.ms(span.t0), end_ms=n.ms(span.t1))

    def span(self, name: str, cat: str, event: str, t0: float, t1: float,
             err: str | None, pid: int = 1) -> None:
        base: Any = super()
        base.span(name, cat, event, t0, t1, err, pid)
        if cat == "handler":
            n = self._notify
            n("branch", name=name, event=event, start_ms=n.ms(t0), end_ms=n.ms(t1),
              error=err)

    def call(self, service: str, t0: float, t1: float, critical_s: float,
             busy_s: float) -> None:
        base: Any = super()
        base.call(service, t0, t1, critical_s, busy_s)
        n = self._notify
        n("join", service=service, start_ms=n.ms(t0), end_ms=n.ms(t1))

    def stats(self) -> dict[str, Any]:  # type: ignore[override]
        """Per service/handler ``rows`` (as ``--stats`` shows them) and queue waits; with
        a span-tree recorder, its ``--stats-json`` document too (tokens, cost)."""
        if self.keep_spans:
            base: Any = super()
            return {**base.stats(), "rows": self.rows()}
        return {"rows": self.rows(), "queues": self.queue_rows()}


def reported_usage(context: Any) -> dict[str, int] | None:
    """Tokens the provider reported for one request (``context.usage``), or None."""
    usage = getattr(context, "usage", None)
    if not usage:
        return None
    return {"input_tokens": sum(int(getattr(u, "input_tokens", 0)) for u in usage),
            "output_tokens": sum(int(getattr(u, "output_tokens", 0)) for u in usage)}


class _Printed:
    """The run's stdout: whole lines, each also a ``print`` event."""

    def __init__(self, notify: _Notify) -> None:
        self.lines: list[str] = []
        self._part = ""
        self._notify = notify

    def write(self, text: str) -> int:
        parts = (self._part + text).split("\n")
        self._part = parts.pop()
        for line in parts:
            self.lines.append(line)
            self._notify("print", text=line)
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> list[str]:
        if self._part:
            self.lines.append(self._part)
            self._part = ""
        return self.lines


class _Quiet:
    """The run's stderr: errors are kept as data (``errors``), so the text is dropped."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


#: ``emit`` events reported per run; past it one ``emit.limit`` event says so (a run that
#: emits without end must not spend its time reporting it).
EMIT_EVENTS = 2000


class ApiStream(StreamRuntime):
    """One API run's runtime: a batch stream that also reports emits and errors."""

    notify: _Notify
    emitted = 0

    def emit(self, name: str, payload: Any = None, span: int = -1) -> None:
        super().emit(name, payload, span)
        if self.notify.listener is None:
            return
        if name == OUTPUT_EVENT and self.outputs:
            self.notify("output", output=json.loads(self.outputs[-1]))
        self.emitted += 1
        if self.emitted <= EMIT_EVENTS:
            self.notify("emit", event=name, payload=plain({} if payload is None else payload))
        elif self.emitted == EMIT_EVENTS + 1:
            self.notify("emit.limit", after=EMIT_EVENTS)

    def report(self, exc: BaseException, where: str | None = None) -> None:
        n = len(self.errors)
        super().report(exc, where)
        for err in self.errors[n:]:
            self.notify("error", error=err)


# ---------------------------------------------------------------- stalls

#: Per virtual loop: the timeouts of the streams running on it (a stall expires them).
_ACTIVE: weakref.WeakKeyDictionary[Any, dict[int, tuple[asyncio.Timeout, list[bool]]]] = \
    weakref.WeakKeyDictionary()


def _watch_stalls(loop: asyncio.AbstractEventLoop) -> dict[int, tuple[asyncio.Timeout,
                                                                     list[bool]]]:
    active = _ACTIVE.get(loop)
    if active is None:
        active = _ACTIVE[loop] = {}

        def on_stall() -> None:
            if hasattr(loop, "_stall_reported"):
                loop._stall_reported = False  # later stalls are reported too
            for cm, flag in list(active.values()):
                flag[0] = True
                cm.reschedule(loop.time())

        loop.on_stall = on_stall  # type: ignore[attr-defined]
    return active


# ---------------------------------------------------------------- one run

async def execute(program: Program, record: Any, settings: RunSettings, session: Runtime,
                  *, listener: Listener | None = None, run_id: str | None = None,
                  seed: int | None = None, has_record: bool | None = None,
                  raw: list[str] | None = None, index: int | None = None) -> RunResult:
    """Run ``program`` as one isolated stream in the running loop (see Program.run);
    ``index``: the stream's number in a batch (a journal's stream key)."""
    from .session import Runtime as Session

    rid = run_id or session.next_id()
    private: Session | None = None
    if not session.shares(settings):
        private = Session(settings, provider=None, kind=session.kind)
    try:
        owner = private or session
        shared = owner.shared()
        for warning in owner.open_journal(program):
            sys.stderr.write(f"warning: {warning}\n")
        provider = owner.run_provider(shared.provider)
        session.active += 1
        session.started += 1
        try:
            task = asyncio.get_running_loop().create_task(
                _stream(program, record, settings, shared, provider, listener, rid,
                        settings.seed if seed is None else seed,
                        record is not None if has_record is None else has_record, raw,
                        SINGLE_STREAM if index is None else index))
            return await task
        finally:
            session.active -= 1
            owner.run_finished(provider)
    finally:
        if private is not None:
            await private.aclose()


async def _stream(program: Program, record: Any, settings: RunSettings, shared: Any,
                  provider: Any, listener: Listener | None, rid: str, seed: int,
                  has_record: bool, raw: list[str] | None, index: int) -> RunResult:
    loop = asyncio.get_running_loop()
    notify = _Notify(listener, loop)
    printed = _Printed(notify)
    rt = ApiStream(0, shared, spans=program.spans, sources=program.sources, seed=seed,
                   stdout=printed, stderr=_Quiet())  # type: ignore[arg-type]
    rt.notify = notify
    rt.settings = settings
    rt.index = index
    rt.provider = _ObservedProvider(provider, notify)
    recorder = rt.recorder = _RunRecorder(notify)
    recorder.meter = getattr(shared, "meter", None)  # prices usage (with a cost meter)
    rt.attach(loop)
    flow = new_flow(f"run {rid}")
    timeout_ms = settings.timeout_ms
    cm = rt.run_timeout(timeout_ms)
    stalled = [False]
    active = _watch_stalls(loop) if hasattr(loop, "on_stall") else None
    if active is not None:
        active[id(rt)] = (cm, stalled)
    rt.main_task = asyncio.current_task()
    notify("run.start", id=rid, t_ms=0.0)
    try:
        DEPTH.set(0)
        FLOW.set(flow)

        async def top() -> None:
            rt.use_program(program.factory)
            await program.factory(rt)(rt)

        stopped = await rt.run_top(top, cm, [(INPUT_EVENT, record)] if has_record else (),
                                   where=None)
        if stopped == "flood":
            rt.cancel_all()  # its error is in the run's errors
        elif stopped == "timeout":
            err: dict[str, Any]
            if stalled[0]:
                err = {"type": "stalled", "message": STALLED}
            else:
                err = {"type": "timeout", "message":
                       f"run timed out after {fmt_num(float(timeout_ms or 0))} ms"}
            pend = rt.pending_own()
            if pend:
                err["running"] = pend[:10]
            rt.errors.append(err)
            notify("error", error=err)
            rt.cancel_all()
    except asyncio.CancelledError:
        rt.cancel_all()
        raise
    finally:
        if active is not None:
            active.pop(id(rt), None)
        shared.flow_done(flow)
    duration = notify.ms(loop.time())
    if raw is not None:
        raw.extend(rt.outputs)
    result = RunResult(id=rid, outputs=[json.loads(o) for o in rt.outputs],
                       printed=printed.close(), errors=list(rt.errors),
                       stats=recorder.stats(), duration_ms=duration)
    notify("run.end", id=rid, ok=result.ok, duration_ms=duration, error=result.error)
    return result


# ---------------------------------------------------------------- batches

def parse_line(raw: str | bytes, lineno: int) -> tuple[Any, dict[str, Any] | None]:
    """``(record, None)`` for a JSON line, ``(None, error)`` for a malformed one (the
    CLI's ``input`` error records)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, {"type": "input",
                          "message": f"line {lineno}: not valid UTF-8 (byte {exc.start + 1})"}
    try:
        return json.loads(raw, parse_int=float), None
    except json.JSONDecodeError as exc:
        return None, {"type": "input", "message": f"line {lineno}: invalid JSON: {exc.msg} "
                                                  f"(column {exc.colno})"}
    except (ValueError, RecursionError) as exc:
        return None, {"type": "input", "message": f"line {lineno}: invalid JSON: {exc}"}


async def _numbered(records: Iterable[Any] | AsyncIterable[Any],
                    jsonl: bool) -> AsyncIterator[tuple[int, Any, dict[str, Any] | None]]:
    index = 0
    lineno = 0

    async def items() -> AsyncIterator[Any]:
        if isinstance(records, AsyncIterable):
            async for r in records:
                yield r
        else:
            for r in records:
                yield r

    async for item in items():
        lineno += 1
        if jsonl:
            if not (item.strip() if isinstance(item, (str, bytes)) else item):
                continue
            record, bad = parse_line(item, lineno)
        else:
            record, bad = item, None
        yield index, record, bad
        index += 1


async def batch_lines(program: Program, records: Iterable[Any] | AsyncIterable[Any],
                      settings: RunSettings, session: Runtime, *, streams: int,
                      ordered: bool, jsonl: bool) -> AsyncIterator[str]:
    """Result lines of one stream per record, ``streams`` at once (see Program.batch)."""
    from .program import _plain

    source = _numbered(records, jsonl)
    lock = asyncio.Lock()
    done: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()

    async def next_item() -> tuple[int, Any, dict[str, Any] | None] | None:
        async with lock:
            try:
                return await source.__anext__()
            except StopAsyncIteration:
                return None

    async def worker() -> None:
        while True:
            item = await next_item()
            if item is None:
                return
            index, record, bad = item
            if bad is None:
                try:
                    record = _plain(record)
                except (TypeError, ValueError) as exc:
                    bad = {"type": "input", "message": f"record {index}: {exc}"}
            if bad is not None:
                await done.put((index, result_lines(index, (), bad)))
                continue
            outs: list[str] = []
            res = await execute(program, record, settings, session,
                                seed=stream_seed(settings.seed, index),
                                run_id=f"{index}", has_record=True, raw=outs, index=index)
            await done.put((index, result_lines(index, outs, res.error)))

    async def workers() -> None:
        try:
            await asyncio.gather(*(worker() for _ in range(streams)))
        finally:
            await done.put(None)

    runner = asyncio.get_running_loop().create_task(workers())
    buffer: dict[int, str] = {}
    nxt = 0
    try:
        while True:
            got = await done.get()
            if got is None:
                break
            index, text = got
            if not ordered:
                yield text
                continue
            buffer[index] = text
            while nxt in buffer:
                yield buffer.pop(nxt)
                nxt += 1
        for index in sorted(buffer):
            yield buffer[index]
        await runner  # re-raise a worker's failure
    finally:
        if not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
