"""Service calls with parallel handler parameters (SPEC §4.4–4.5, §10 rules 7–21, 33–37).

One :class:`_Join` per call and one slotted :class:`_Inv` per branch invocation (a key's
subscriber). Branch tasks run the handler coroutine directly (no wrapper frame); a done
callback records the result. All branches started at fan-out share one deadline timer;
queued starts and retries get their own. Cancelling the calling coroutine cancels the
provider call, every branch and every item (rule 35).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
from collections import deque
from typing import TYPE_CHECKING, Any

from cxpar.lang import DEFAULT_TIMEOUT_MS, MAX_DEPTH, NO_MODEL_OPTIONS

from .cost import BUDGET_ERROR
from .errors import CxRuntimeError
from .flows import FLOW, Flow
from .limits import backoff_s, priority_value
from .providers.base import CallContext, ProviderError, request_text
from .providers.turns import ToolRequest, ToolRound
from .ratelimit import RateLimiter, estimate_tokens
from .structured import INVALID_OUTPUT, conform
from .tools import ModelOptions, log_entry, model_options, prepare_call, result_text
from .tracing import SPAN, Span, label_of
from .values import Instance, to_json, to_request, truthy, type_name

if TYPE_CHECKING:
    from .endpoints import Route
    from .scheduler import Runtime

__all__ = ["run_service", "DEPTH"]

#: Handler depth (rule 18): top level 0, branches caller + 1, emitted handlers inherit.
DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("cx_depth", default=0)

#: The branch invocation the running code belongs to (set only while calls can queue).
BRANCH: contextvars.ContextVar[_Inv | None] = contextvars.ContextVar("cx_branch", default=None)

_IDLE, _RUNNING, _SETTLED = 0, 1, 2

#: ``fallback`` absent (``null`` is a valid fallback value).
_NO_FALLBACK: Any = object()


def task_handler(task: asyncio.Task[Any]) -> str:
    """The CX name of the handler a task runs (``on a.b``, ``Entity: on a.b``)."""
    name = getattr(task.get_coro(), "__qualname__", None) or "handler"
    return str(name).replace("<locals>.", "")


def _label(fn: Any) -> str:
    return str(getattr(fn, "__cx_name__", None) or getattr(fn, "__qualname__", "handler"))


class _Inv:
    """One subscriber of one branch key: attempts, task, timer, outcome."""

    __slots__ = ("join", "ki", "fn", "inst", "attempts", "task", "timer", "state",
                 "t_start", "t_end", "value", "err", "shared", "deadline_at", "blocked",
                 "blocked_at", "waited", "span", "last_span")

    def __init__(self, join: _Join, ki: int, fn: Any, inst: Any) -> None:
        self.join = join
        self.ki = ki
        self.fn = fn
        self.inst = inst
        self.attempts = 0
        self.task: asyncio.Task[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.state = _IDLE
        self.t_start = -1.0
        self.t_end = -1.0
        self.value: Any = None
        self.err: tuple[str, str] | None = None
        self.shared = False
        #: When this attempt times out (loop seconds); queue waits push it back.
        self.deadline_at = 0.0
        #: Calls made inside this branch that wait for a slot right now, since when.
        self.blocked = 0
        self.blocked_at = 0.0
        #: Seconds calls inside waited for slots (not its own time: rule 45).
        self.waited = 0.0
        #: The span of the running attempt (spans on), else None; and of the last one.
        self.span: Span | None = None
        self.last_span: Span | None = None

    # -- starting
    def start(self) -> bool:
        """Start (or restart) the handler task; False if the call was abandoned."""
        join = self.join
        if join.closed:
            return False
        loop = join.loop
        self.state = _RUNNING
        self.attempts += 1
        now = loop.time()
        if self.t_start < 0:
            self.t_start = now
        base = join.bases[self.ki]
        # Rule 14: each subscriber gets its own shallow copy -- unless the compiled
        # handler provably never writes to or passes on its event (__cx_pure_event__):
        # then sharing the call's (never mutated) request is indistinguishable.
        ev = dict(base) if type(base) is dict and not getattr(
            self.fn, "__cx_pure_event__", False) else base
        ctx = join.ctx
        if join.rt.queueing and ctx is not None:  # calls inside know their branch
            ctx = ctx.copy()
            ctx.run(BRANCH.set, self)
        if join.span is not None:
            rec: Any = join.rt.recorder
            self.span = span = rec.handler_span(
                self.fn, self.inst, join.events[self.ki], join.span, now, awaited=True,
                attrs={"key": join.keys[self.ki], "attempt": self.attempts})
            span.prev = self.last_span
            self.last_span = span
            ctx = ctx.copy() if ctx is not None else contextvars.copy_context()
            ctx.run(SPAN.set, span)
        task = loop.create_task(self.fn(join.rt, self.inst, ev), context=ctx)
        self.task = task
        task.add_done_callback(self.on_done)
        # a cancelled attempt's waiting calls unblock shortly: count from this start
        self.blocked_at = now
        self.deadline_at = now + join.timeout_s
        if join.fanning and self.attempts == 1:
            self.shared = True
        else:
            self.shared = False
            self.timer = loop.call_at(self.deadline_at, self.on_timeout)
        return True

    # -- waits for slots inside the branch do not count toward its timeout (rule 45)
    def block(self, now: float) -> None:
        if self.blocked == 0:
            self.blocked_at = now
        self.blocked += 1

    def unblock(self, now: float) -> None:
        self.blocked -= 1
        if self.blocked or self.state != _RUNNING:
            return
        if now > self.blocked_at:
            self.deadline_at += now - self.blocked_at
            self.waited += now - self.blocked_at
        elif self.shared or self.timer is not None:
            return
        if not self.shared:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = self.join.loop.call_at(self.deadline_at, self.on_timeout)

    def _retry(self) -> None:
        self.timer = None
        if self.join.closed:
            return
        self.start()

    # -- outcomes
    def on_done(self, task: asyncio.Task[Any]) -> None:
        if task is not self.task or self.state != _RUNNING:
            return
        self.task = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        join = self.join
        if task.cancelled():
            msg = f"`{join.events[self.ki]}` was cancelled"
            self._end_span("cancelled", msg)
            self._settle(None, ("cancelled", msg))
            return
        exc = task.exception()
        if exc is None:
            self._end_span(None, None)
            self._settle(task.result(), None)
            return
        exc = join.rt.cx_error(exc)
        where = (f"in handler `{_label(self.fn)}` (branch `{join.keys[self.ki]}` of "
                 f"`{join.service}`, event `{join.events[self.ki]}`)")
        if self.attempts <= join.retries and not join.closed:
            join.rt.warn_attempt(exc, self.attempts, join.retries + 1, where)
        else:
            join.rt.report(exc, where)
        msg = exc.message if isinstance(exc, CxRuntimeError) else f"internal error: {exc!r}"
        self._end_span("error", msg)
        self._fail("error", msg)

    def _end_span(self, err: str | None, msg: str | None) -> None:
        span = self.span
        if span is not None:
            self.span = None
            rec: Any = self.join.rt.recorder
            rec.end(span, self.join.loop.time(), err, msg)

    def on_timeout(self) -> None:
        self.timer = None
        task = self.task
        if task is None or task.done() or self.state != _RUNNING:
            return
        if self.blocked:  # a call inside waits for a slot: unblock() re-arms the timer
            self.shared = False
            return
        self.task = None
        task.cancel()
        join = self.join
        msg = f"`{join.events[self.ki]}` timed out after {_ms_str(join.timeout_s)} ms"
        self._end_span("timeout", msg)
        self._fail("timeout", msg)

    def _fail(self, kind: str, msg: str) -> None:
        join = self.join
        if self.attempts <= join.retries and not join.closed:
            loop = join.loop
            delay = backoff_s(self.attempts - 1, join.rt._jitter_rng)
            self.timer = loop.call_at(loop.time() + delay, self._retry)
            return
        self._settle(None, (kind, msg))

    def _settle(self, value: Any, err: tuple[str, str] | None) -> None:
        join = self.join
        self.state = _SETTLED
        self.value = value
        self.err = err
        self.t_end = join.loop.time()
        rec = join.rt.recorder
        if rec is not None:
            rec.invocation_done(label_of(self.fn), self.t_start, self.t_end, err is not None,
                                max(0, self.attempts - 1))
        join.pending -= 1
        join.release_slot()
        if join.pending == 0 and join.prov_done:
            join.finish()


def _ms_str(s: float) -> str:
    from .values import fmt_num
    return fmt_num(round(s * 1000, 3))


class _Join:
    """State of one service call between fan-out and join."""

    __slots__ = ("rt", "loop", "service", "keys", "events", "bases", "invs", "key_invs",
                 "key_err", "pending", "fut", "timeout_s", "retries", "priority",
                 "concurrency", "running", "queue", "closed", "fanning", "ctx",
                 "deadline", "prov_done", "prov_value", "prov_err", "prov_attempts",
                 "prov_t", "prov_task", "t0", "prov_waiting", "deadline_held", "parent",
                 "prov_work", "call_span", "span", "route", "opts", "tool_log")

    def __init__(self, rt: Runtime, service: str) -> None:
        self.rt = rt
        self.loop = rt.loop
        self.service = service
        self.keys: list[str] = []
        self.events: list[str] = []
        self.bases: list[Any] = []
        self.invs: list[_Inv] = []
        self.key_invs: list[tuple[int, int]] = []
        self.key_err: list[dict[str, Any] | None] = []
        self.pending = 0
        self.fut: asyncio.Future[None] = self.loop.create_future()
        self.timeout_s = DEFAULT_TIMEOUT_MS / 1000
        self.retries = 0
        self.priority = 0.0
        self.concurrency = 0
        self.running = 0
        self.queue: deque[_Inv] = deque()
        self.closed = False
        self.fanning = False
        self.ctx: contextvars.Context | None = None
        self.deadline: asyncio.TimerHandle | None = None
        self.prov_done = False
        self.prov_value: Any = None
        self.prov_err: tuple[str, str] | None = None
        self.prov_attempts = 0
        self.prov_t = 0.0
        self.prov_task: asyncio.Task[None] | None = None
        self.t0 = 0.0
        #: From the first request to the provider part's outcome (0: nothing was sent).
        self.prov_work = 0.0
        #: Spans on: the call's span, and the span its parts run under (the join's when
        #: the call has branches, else the call's).
        self.call_span: Span | None = None
        self.span: Span | None = None
        #: The provider's first attempt waits for a slot (branch deadlines wait with it).
        self.prov_waiting = False
        self.deadline_held = False
        #: The branch this call is made in (its queue waits push that branch's deadline).
        self.parent: _Inv | None = BRANCH.get() if rt.queueing else None
        #: The endpoint and model of the provider call (None: a plug-in service/await).
        self.route: Route | None = None
        #: ``schema`` / ``tools`` / ``tool_rounds`` / ``stream`` (None: none given).
        self.opts: ModelOptions | None = None
        #: ``_tools`` entries, in the order the calls were made.
        self.tool_log: list[dict[str, Any]] = []

    # -- per-call concurrency (branches never hold a global slot: rule 45)
    def request_start(self, inv: _Inv) -> None:
        if self.concurrency:
            if self.running >= self.concurrency:
                self.queue.append(inv)
                return
            self.running += 1
        inv.start()

    def release_slot(self) -> None:
        if self.concurrency:
            self.running -= 1
            if self.queue and not self.closed:
                self.request_start(self.queue.popleft())

    def slot_granted(self, t_slot: float, waited: bool) -> None:
        """The provider's first attempt got its slot at ``t_slot``. If it had to wait, the
        branches started at fan-out time out ``timeout`` after the slot (rule 45: a call's
        timeout starts at its slot), so a program whose turn comes late is not failed
        for waiting it."""
        self.prov_waiting = False
        if not waited or (self.deadline is None and not self.deadline_held):
            return
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline_held = False
        due = t_slot + self.timeout_s
        for inv in self.invs:
            if inv.shared and inv.deadline_at < due:
                inv.deadline_at = due
        self.deadline = self.loop.call_at(due, self.on_deadline)

    def on_deadline(self) -> None:
        self.deadline = None
        if self.prov_waiting:  # the provider has no slot yet: slot_granted re-arms
            self.deadline_held = True
            return
        loop = self.loop
        now = loop.time()
        for inv in self.invs:
            if inv.shared and inv.state == _RUNNING and inv.attempts == 1:
                if inv.deadline_at > now + 1e-9 and not inv.blocked:  # pushed back
                    inv.shared = False
                    inv.timer = loop.call_at(inv.deadline_at, inv.on_timeout)
                else:
                    inv.on_timeout()

    def on_provider_done(self, _task: asyncio.Task[None]) -> None:
        """The provider task's done callback: its side of the join (rule 50).

        Branches settle in their tasks' done callbacks, one step after their last
        statement; the provider call settles the same way, so a call resumes equally
        late whichever of them ends last -- with or without branches, and like the fast
        ``await`` path (:func:`run_await`).
        """
        self.prov_done = True
        if self.pending == 0:
            self.finish()

    def finish(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        if not self.fut.done():
            self.fut.set_result(None)

    def close(self) -> None:
        """Abandon the call (outer cancellation): cancel everything it started."""
        self.closed = True
        if self.deadline is not None:
            self.deadline.cancel()
        for inv in self.invs:
            if inv.timer is not None:
                inv.timer.cancel()
            if inv.task is not None:
                inv.task.cancel()
            inv._end_span("cancelled", "the call was cancelled")
            inv.state = _SETTLED
        self.queue.clear()
        if self.prov_task is not None:
            self.prov_task.cancel()


def _number(v: Any, what: str, span: int, *, minimum: float = 0) -> float:
    if type(v) not in (float, int) or v != v or v < minimum:
        raise CxRuntimeError(
            f"`{what}` must be a number >= {minimum:g}, got {type_name(v)}", span)
    return float(v)


async def _provider(join: _Join, request: dict[str, Any], span: int,
                    caller: Any, await_ms: float | None) -> None:
    """The provider call (or the ``await`` timer) with limits, timeout, retries, breaker.

    Each request waits for its slots (the endpoint's ``max_concurrency``, its adaptive
    limit, then the global ``--max-concurrency``) before anything else; its timeout
    starts when it has them (rule 45). Time spent waiting is the call's ``queued`` time:
    reported to the stats recorder, never part of ``critical_ms`` or the payload. Then
    the run's budget (``rt.meter``) is asked: once reached, the call fails with
    ``budget_exceeded`` and is not retried. Each attempt's usage is spent on the meter
    and recorded (one span per attempt with spans on).

    With ``schema`` the answer is validated (``invalid_output``, retryable); with
    ``tools`` an answer that calls tools runs them (slots released, like branches) and
    the next round is a new request with its own retries (docs/runtime.md "Tools").
    """
    rt = join.rt
    loop = join.loop
    service = join.service
    sname = _stats_name(join)  # the stats row: per endpoint and model
    t_start = loop.time()
    t_first = -1.0  # when the first attempt got its slots
    queued = 0.0
    flow = FLOW.get()
    lim = rt.limiter
    rec: Any = rt.recorder
    retried = 0
    cancelled = True
    prev_span: Span | None = None
    try:
        if await_ms is not None:  # `await`: a runtime timer, never cut short (rule 34)
            join.prov_attempts = 1
            t_first = t_start
            if await_ms > 0:
                await asyncio.sleep(await_ms / 1000)
            join.prov_value = float(await_ms)
            cancelled = False
            return
        impl = rt.plugin_impl(service)
        route = join.route
        ep = route.endpoint if route is not None and impl is None else None
        breaker = rt.breaker(service, route)
        res = rt.resilience
        alim = res.adaptive_for(ep.provider, service, route.model if route.chosen else None) \
            if ep is not None and route is not None else None
        elim = ep.limiter if ep is not None else None
        rate = ep.rate if ep is not None else None
        budget = res.budget(service)
        meter = rt.meter
        opts = join.opts
        history: list[ToolRound] = []
        rounds = 0
        attempts = join.retries + 1
        if opts is not None and opts.invalid is not None:  # nothing could be sent
            join.prov_err = ("provider", f"`{service}` failed: {opts.invalid}")
            attempts = 0
        path = rt.call_path(span) if lim is not None or alim is not None or \
            elim is not None else None
        attempt = 0
        while attempt < attempts:
            attempt += 1
            now = loop.time()
            if breaker is not None and breaker.blocked(now):  # fail fast, do not queue
                join.prov_err = ("circuit_open", f"circuit open for `{service}`")
                break
            if attempt == 1:
                budget.on_call(now)
            else:
                retried += 1
            join.prov_attempts += 1
            retryable: bool = True
            retry_after: Any = None
            outcome: bool | None = None  # True ok, False a failure the endpoint owns
            ticket: int | None = None
            held_e = held_a = held_g = False
            t_call = -1.0
            tool_req: ToolRequest | None = None
            entry: Any = None
            resend: _Resend | None = None
            est = 0
            ctx: CallContext | None = None
            aspan: Span | None = None
            a_err: tuple[str, str] | None = ("cancelled", f"`{service}` was cancelled")
            try:
                waited = False
                if attempt == 1 and not rounds:
                    join.prov_waiting = True
                _blocked(join.parent, now, True)
                try:
                    while True:  # rate room first, then slots; counted when sent
                        limited = rate is not None and rate.active
                        if limited:
                            assert rate is not None
                            if rate.tpm is not None:
                                est = _estimate(rt, request, opts, history)
                            t_r = loop.time()
                            if rate.delay(t_r, est) > 0 and await rate.ready(est) > 0:
                                waited = True
                                _record_rate_wait(rt, sname, t_r, loop.time())
                        if elim is not None:
                            waited = await elim.acquire(join.priority, flow, path) or waited
                            held_e = True
                        if alim is not None:
                            waited = await alim.acquire(join.priority, flow, path) or waited
                            held_a = True
                        if lim is not None:
                            waited = await lim.acquire(join.priority, flow, path) or waited
                            held_g = True
                        if not limited:
                            break
                        assert rate is not None
                        entry = rate.commit(loop.time(), est)
                        if entry is not None:
                            break
                        for held, limiter in ((held_g, lim), (held_a, alim), (held_e, elim)):
                            if held and limiter is not None:
                                limiter.release()
                        held_e = held_a = held_g = False
                finally:
                    _blocked(join.parent, loop.time(), False)
                t_call = loop.time()
                if t_first < 0:
                    t_first = t_call
                    join.slot_granted(t_call, waited)
                if waited:
                    queued += t_call - now
                    _record_wait(rt, flow, sname, now, t_call, join.span)
                stop = meter.refuse()
                if stop is not None:  # the budget was reached: no new request starts
                    join.prov_err = (BUDGET_ERROR, f"`{service}` was not called: {stop}")
                    rt.budget_stopped += 1
                    break
                if breaker is not None:
                    ticket = breaker.admit(t_call)
                    if ticket is None:
                        join.prov_err = ("circuit_open", f"circuit open for `{service}`")
                        break
                # rule 12: fan-out + timeout; rule 45: from the slot if the call queued;
                # a later tool round is a new request with its own timeout
                base = join.t0 if attempt == 1 and not rounds and not waited else t_call
                deadline = base + join.timeout_s
                ctx = CallContext(service, rt.stem(service) or service, caller, attempt, rt,
                                  deadline)
                if join.span is not None:
                    aspan = rec.begin("attempt", f"{service} attempt {attempt}", join.span,
                                      t_call, attrs={"service": sname, "attempt": attempt})
                    aspan.prev = prev_span  # type: ignore[union-attr]
                    prev_span = aspan
                    if rec.content:
                        aspan.attrs["input"] = request_text(request)  # type: ignore[union-attr]
                if rate is not None:
                    ctx.pause = functools.partial(_pause, rate, loop)
                    ctx.resend = resend = _Resend(rt, rate, est, ctx, sname, flow)
                if route is not None:
                    ctx.endpoint = route.endpoint.name
                    ctx.model = route.model
                    if route.chosen:
                        ctx.chosen_model = route.model
                if opts is not None:
                    _configure(join, opts, ctx, history)
                try:
                    async with asyncio.timeout_at(deadline) as cm:
                        if resend is not None:
                            resend.timer = cm
                        if impl is not None:
                            value = await impl(dict(request), ctx)
                        else:
                            value = await rt.provider.call(service, dict(request), ctx)
                        if type(value) is ToolRequest:
                            if opts is None or not opts.tools:
                                raise ProviderError(f"the provider asked to call tools, but "
                                                    f"the `{service}` call offers none",
                                                    retryable=False)
                            tool_req = value
                        elif opts is not None and opts.schema is not None:
                            value = conform(value, opts.schema)
                except TimeoutError:
                    outcome = False
                    if cm.expired():
                        join.prov_err = ("timeout", f"`{service}` timed out after "
                                                    f"{_ms_str(join.timeout_s)} ms")
                    else:
                        join.prov_err = ("provider", f"`{service}` failed: timeout error")
                    a_err = join.prov_err
                except Exception as exc:  # noqa: BLE001 - every provider failure is data
                    msg = str(exc) or type(exc).__name__
                    kind = getattr(exc, "kind", "provider")
                    join.prov_err = ("provider", f"`{service}` failed: {msg}") \
                        if kind == "provider" or type(kind) is not str else \
                        (kind, f"`{service}` failed: {msg}" if kind == INVALID_OUTPUT else msg)
                    # ProviderError: retryable=False stops retries (and is the request's
                    # fault, not the endpoint's); retry_after (s) = Retry-After
                    retryable = getattr(exc, "retryable", True) is not False
                    retry_after = getattr(exc, "retry_after", None)
                    if rate is not None and type(retry_after) in (int, float):
                        rate.pause(loop.time(), float(retry_after))  # the whole endpoint
                    # an answer that fails the schema is the model's, not the endpoint's
                    outcome = False if retryable and kind != INVALID_OUTPUT else None
                    a_err = join.prov_err
                else:
                    outcome = True
                    join.prov_err = None
                    if tool_req is None:
                        join.prov_value = value
                    a_err = None
                    if aspan is not None and rec.content:
                        out = value.to_data() if type(value) is ToolRequest else value
                        aspan.attrs["output"] = out if type(out) is str else to_json(out)
            finally:
                t_done = loop.time()
                served = t_done - t_call if outcome else 0.0
                if rate is not None and (entry is not None or resend is not None):
                    _correct(rate, entry, resend, ctx)
                if resend is not None:
                    queued += resend.waited
                if held_g and lim is not None:
                    lim.release(service, served)
                if held_a and alim is not None:
                    if outcome is None:
                        alim.release()
                    else:
                        alim.sample(t_call, t_done, not outcome, service)
                if held_e and elim is not None:
                    elim.release(service, served)
                if t_call >= 0 and flow is not None:
                    flow.attained += t_done - t_call
                if ctx is not None:
                    if ctx.usage:
                        meter.spend(ctx.usage, t_done)
                    if rec is not None:
                        rec.attempt_done(sname, aspan, t_call, t_done,
                                         a_err[0] if a_err else None,
                                         a_err[1] if a_err else None, ctx)
                if ticket is not None and breaker is not None:
                    if outcome is None:
                        breaker.release(ticket)
                    else:
                        change = breaker.record(ticket, outcome, t_done)
                        if change is not None:
                            rt.emit(f"system.circuit.{change}",
                                    breaker.event_payload(service, change))
            if outcome:
                if tool_req is None:
                    break
                assert opts is not None
                rounds += 1
                if rounds > opts.tool_rounds:
                    join.prov_err = ("tool_rounds", f"`{service}` still called tools after "
                                     f"{opts.tool_rounds} round"
                                     f"{'s' if opts.tool_rounds != 1 else ''} (`tool_rounds`)")
                    break
                history.append(await _tool_round(join, opts, tool_req, rounds))
                attempt = 0  # the next round's request gets its own retries
                continue
            if not retryable:
                break
            if attempt < attempts:
                if not budget.try_retry(loop.time()):
                    kind, msg = join.prov_err or ("provider", "")
                    join.prov_err = (kind, msg + " (retry budget exhausted)")
                    break
                delay = backoff_s(attempt - 1, rt._jitter_rng)
                if type(retry_after) in (int, float) and retry_after > delay:
                    delay = float(retry_after)
                await asyncio.sleep(delay)
        cancelled = False
    finally:
        t_end = loop.time()
        # rule 45: time spent queued is never part of the call's own time
        join.prov_t = t_end - t_start - queued
        join.prov_work = t_end - t_first if t_first >= 0 else 0.0
        if rec is not None:
            if await_ms is not None:
                rec.timer(t_start, t_end)
            else:
                rec.call_done(sname, join.prov_err is not None and not cancelled,
                              retried, queued)
                if join.call_span is not None and queued > 0:
                    join.call_span.attrs["queued_ms"] = round(queued * 1000, 6)


def _blocked(inv: _Inv | None, now: float, on: bool) -> None:
    """A call inside ``inv`` (and every branch around it) starts/stops waiting for a slot."""
    while inv is not None:
        if on:
            inv.block(now)
        else:
            inv.unblock(now)
        inv = inv.join.parent


def _stats_name(join: _Join) -> str:
    """The stats row of a call: its service, plus ``@endpoint[/model]`` when it went to
    another endpoint or chose a model (stats are per endpoint and model)."""
    route = join.route
    if route is None or (not route.chosen and route.endpoint.name ==
                         join.rt.endpoints.default):
        return join.service
    return f"{join.service}@{route.key}"


def _pause(rate: RateLimiter, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
    rate.pause(loop.time(), seconds)


@dataclasses.dataclass(slots=True, eq=False)
class _Resend:
    """``CallContext.resend`` of one attempt: a request the provider sends again (a
    transport retry) waits for its endpoint's rate room and is counted there like any
    request. The wait is queue time (rule 45, decision M15): the attempt's timeout moves
    later by it, and it is reported as queued and ``rate_wait_ms`` on the call's row."""

    rt: Runtime
    rate: RateLimiter
    tokens: int
    ctx: CallContext
    row: str
    flow: Flow | None
    timer: asyncio.Timeout | None = None
    #: ``(entry, len(ctx.usage) when sent)`` of each request sent again.
    sent: list[tuple[Any, int]] = dataclasses.field(default_factory=list)
    waited: float = 0.0

    async def __call__(self) -> None:
        rate = self.rate
        if not rate.active:
            return
        loop = self.rt.loop
        t0 = loop.time()
        timer = self.timer
        when = timer.when() if timer is not None else None
        if timer is not None:
            timer.reschedule(None)  # the wait does not count toward the timeout
        try:
            entry, waited = await rate.admit(self.tokens)
        finally:
            t1 = loop.time()
            if timer is not None and when is not None:
                timer.reschedule(when + (t1 - t0))
        self.sent.append((entry, len(self.ctx.usage)))
        if waited <= 0:
            return
        self.waited += waited
        if self.ctx.deadline is not None:
            self.ctx.deadline += waited
        _record_rate_wait(self.rt, self.row, t0, t1)
        _record_wait(self.rt, self.flow, self.row, t0, t1)


def _correct(rate: RateLimiter, first: Any, resend: _Resend | None, ctx: CallContext | None) -> None:
    """Correct each request of an attempt to the usage reported while it ran (requests
    that reported none keep their estimate)."""
    sent = ([(first, 0)] if first is not None else []) + (resend.sent if resend else [])
    usage = ctx.usage if ctx is not None else []
    for i, (entry, start) in enumerate(sent):
        end = sent[i + 1][1] if i + 1 < len(sent) else len(usage)
        got = usage[start:end]
        if got:
            rate.correct(entry, sum(u.input_tokens + u.output_tokens for u in got))


def _estimate(rt: Runtime, request: dict[str, Any], opts: ModelOptions | None,
              history: list[ToolRound]) -> int:
    """The token estimate of one request for ``tpm`` (see :mod:`.ratelimit`)."""
    extra: list[Any] = []
    if opts is not None:
        if opts.schema is not None:
            extra.append(opts.schema)
        if opts.tools:
            extra.append([[t.name, t.description, t.parameters] for t in opts.tools])
    for rnd in history:
        extra.append(rnd.request.to_data())
        extra.append(rnd.results)
    return estimate_tokens(request, extra, rt.settings.provider.max_tokens)


def _record_rate_wait(rt: Runtime, row: str, t0: float, t1: float) -> None:
    """A call (stats row ``row``) waited for its endpoint's rate-limit room."""
    rec = rt.recorder
    if rec is not None:
        rec.rate_wait(row, t0, t1)


def _configure(join: _Join, opts: ModelOptions, ctx: CallContext,
               history: list[ToolRound]) -> None:
    """Give one request the call's schema, tools, tool history and stream callback."""
    ctx.schema = opts.schema
    ctx.tools = opts.tools
    ctx.history = history
    if opts.stream is not None:
        rt = join.rt
        event = opts.stream
        service = join.service
        counter = [0]
        t_sent = join.loop.time()

        def on_chunk(text: str) -> None:
            if type(text) is not str or not text:
                return
            if counter[0] == 0:
                rec = rt.recorder
                if rec is not None:
                    rec.first_token(_stats_name(join), join.loop.time() - t_sent)
            rt.emit(event, {"text": text, "index": float(counter[0]), "service": service})
            counter[0] += 1

        ctx.on_chunk = on_chunk


async def _tool_round(join: _Join, opts: ModelOptions, req: ToolRequest,
                      round_no: int) -> ToolRound:
    """Run every call of one tool round in parallel, each like a branch (the call's
    ``timeout``, ``retries``, ``concurrency`` and depth + 1); log them in ``_tools``."""
    rt = join.rt
    tj = _Join(rt, join.service)
    tj.timeout_s = join.timeout_s
    tj.retries = join.retries
    tj.concurrency = join.concurrency
    depth = DEPTH.get()
    ctx = contextvars.copy_context()
    ctx.run(DEPTH.set, depth + 1)
    tj.ctx = ctx
    tj.prov_done = True
    tj.t0 = join.loop.time()
    prepared: list[tuple[Any, Any, dict[str, Any] | None]] = []
    too_deep = depth + 1 > MAX_DEPTH
    for call in req.calls:
        spec, args, problem = prepare_call(opts, call)
        event = spec.event if spec is not None else call.name
        ki = len(tj.keys)
        tj.keys.append(call.id)
        tj.events.append(event)
        tj.bases.append(args)
        first = len(tj.invs)
        err: dict[str, Any] | None = None
        if problem is not None:
            err = {"type": INVALID_OUTPUT, "message": problem, "event": event, "attempts": 0}
        elif too_deep:
            err = {"type": "depth", "message": f"depth limit {MAX_DEPTH} exceeded at "
                   f"`{event}`", "event": event, "attempts": 0}
        else:
            subs = rt.bus.subscribers(event)
            if not subs:
                err = {"type": "no_handler", "message": f"no handler for `{event}`",
                       "event": event, "attempts": 0}
            for fn, inst in subs if err is None else ():
                tj.invs.append(_Inv(tj, ki, fn, inst))
        tj.key_invs.append((first, len(tj.invs)))
        tj.key_err.append(err)
        prepared.append((event, args, err))
    tj.pending = len(tj.invs)
    tj.fanning = True
    for inv in tj.invs:
        tj.request_start(inv)
    tj.fanning = False
    if any(inv.shared for inv in tj.invs):
        tj.deadline = join.loop.call_at(tj.t0 + tj.timeout_s, tj.on_deadline)
    try:
        if tj.invs and not tj.fut.done():
            await tj.fut
    except BaseException:
        tj.close()
        raise
    out = ToolRound(req)
    for ki, (event, args, _err) in enumerate(prepared):
        value, err = _key_outcome(tj, ki)
        join.tool_log.append(log_entry(event, args, value, err, round_no))
        out.results.append(result_text(value, err))
    return out


def _record_wait(rt: Runtime, flow: Flow | None, service: str, t0: float,
                 t1: float, parent: Span | None = None) -> None:
    """One call waited from ``t0`` to ``t1`` (loop seconds) for a slot."""
    if flow is not None:
        flow.queued += t1 - t0
        flow.waits += 1
    rec = rt.recorder
    if rec is not None:
        rec.queued(service, t0, t1, flow.label if flow is not None else None, parent)


async def run_service(rt: Runtime, name: str, span: int, request: dict[str, Any],
                      branches: Any = (), items: Any = (), *, timeout: Any = None,
                      retries: Any = None, priority: Any = None, concurrency: Any = None,
                      caller: Instance | None = None, fallback: Any = _NO_FALLBACK,
                      fallback_event: str | None = None, model: Any = None,
                      endpoint: Any = None, schema: Any = None, tools: Any = None,
                      tool_rounds: Any = None, stream: str | None = None,
                      ) -> dict[str, Any]:
    """Run one service call, steps 1–6 of SPEC §4.4; returns the result payload.

    ``model``/``endpoint`` route the provider call (docs/runtime.md "Endpoints and
    models"); ``schema``, ``tools``, ``tool_rounds``, ``stream``: see :mod:`.tools`."""
    loop = rt.loop
    stem = rt.stem(name)
    if stem is None:
        raise CxRuntimeError(f"unknown service `{name}`", span)
    if type(request) is not dict:
        request = to_request(request)
    join = _Join(rt, name)
    # step 1: configuration
    if timeout is not None:
        join.timeout_s = _number(timeout, "timeout", span) / 1000
    if retries is not None:
        join.retries = int(_number(retries, "retries", span))
    if priority is not None:
        p = priority_value(priority)
        if p is None:
            raise CxRuntimeError(
                '`priority` must be "high", "normal", "low" or a number', span)
        join.priority = p
    if concurrency is not None:
        join.concurrency = int(_number(concurrency, "concurrency", span, minimum=1))
    if name != "await" and rt.plugin_impl(name) is None:
        join.route = rt.endpoints.route(name, endpoint, model, span)
    if name not in NO_MODEL_OPTIONS:  # is/not/learn/await answer no model text
        join.opts = model_options(span, schema, tools, tool_rounds, stream)
    await_ms: float | None = None
    if name == "await":
        if not branches and not items and fallback is _NO_FALLBACK and fallback_event is None:
            return await run_await(rt, span, request)
        await_ms = _await_duration(rt, request, span)
    depth = DEPTH.get()
    join.t0 = loop.time()
    rec: Any = rt.recorder
    if rec is not None and rec.keep_spans:
        # `service` is the stats row (`think@endpoint/model` when routed elsewhere)
        attrs: dict[str, Any] = {"service": _stats_name(join), "stem": stem,
                                 "caller": getattr(caller, "cls", None)}
        if join.route is not None:
            attrs["endpoint"] = join.route.endpoint.name
            if join.route.model:
                attrs["model"] = join.route.model
        join.call_span = join.span = rec.begin("call", name, SPAN.get(), join.t0, attrs=attrs)
        if branches:
            join.span = rec.begin("join", f"join {name}", join.call_span, join.t0)
    if branches:  # the branches' context (depth + 1); a call without branches needs none
        ctx = contextvars.copy_context()
        ctx.run(DEPTH.set, depth + 1)
        if join.span is not None:
            ctx.run(SPAN.set, join.span)
        join.ctx = ctx
    # step 2: fan-out — provider first, then branches in key order (rule 11)
    join.prov_task = loop.create_task(_provider(join, request, span, caller, await_ms))
    join.prov_task.add_done_callback(join.on_provider_done)
    too_deep = depth + 1 > MAX_DEPTH
    subscribers = rt.bus.subscribers
    invs = join.invs
    join.fanning = True
    for key, event, extra in branches:
        ki = len(join.keys)
        join.keys.append(key)
        join.events.append(event)
        if extra:
            base = dict(request)
            base.update(extra)
        else:
            base = request
        join.bases.append(base)
        first = len(invs)
        err: dict[str, Any] | None = None
        if too_deep:
            err = {"type": "depth", "message": f"depth limit {MAX_DEPTH} exceeded at "
                   f"`{event}`", "event": event, "attempts": 0}
            subs: Any = ()
        else:
            subs = subscribers(event)
            if not subs:
                err = {"type": "no_handler", "message": f"no handler for `{event}`",
                       "event": event, "attempts": 0}
        for fn, inst in subs:
            invs.append(_Inv(join, ki, fn, inst))
        join.key_invs.append((first, len(invs)))
        join.key_err.append(err)
    join.pending = len(invs)
    for inv in invs:
        join.request_start(inv)
    join.fanning = False
    if any(inv.shared for inv in invs):
        join.deadline = loop.call_at(join.t0 + join.timeout_s, join.on_deadline)
    # step 3: join
    try:
        if not join.fut.done():
            await join.fut
    except BaseException:
        join.close()
        if join.call_span is not None:
            rec.end(join.span, loop.time(), "cancelled")
            rec.end(join.call_span, loop.time(), "cancelled")
        raise
    t_join = loop.time()
    payload = _assemble(join, request, t_join)
    cs = join.call_span
    token = None
    if rec is not None:
        if join.invs:
            rec.joined(_stats_name(join), t_join - join.t0, _parts(join))
        if cs is not None:
            if join.span is not cs:
                join.span.attrs.update(payload["_parallel"])  # type: ignore[union-attr]
                rec.end(join.span, t_join)
            cs.attrs["parallel"] = payload["_parallel"]
            token = SPAN.set(cs)  # items and completion handlers run under the call
    outcome: str | None = "cancelled"
    try:
        degraded_result = False
        if (fallback is not _NO_FALLBACK or fallback_event is not None) and "_errors" in payload:
            degraded_result = await _degrade(join, request, payload, fallback, fallback_event)
        # step 4: handlers items (is/not gate them on the decision, rule 21)
        deliver = True
        if name == "is" or name == "not":
            if degraded_result:  # the fallback stands in for the decision
                decision = truthy(payload["result"])
                payload["result"] = decision
                deliver = decision if name == "is" else not decision
            elif join.prov_err is not None:
                deliver = False
            else:
                decision = join.prov_value if type(join.prov_value) is bool \
                    else truthy(join.prov_value)
                payload["result"] = decision
                deliver = decision if name == "is" else not decision
        if deliver and items:
            await rt.deliver_items(payload, items)
        # step 5: completion events
        rt.emit(stem + ".complete", payload)
        errors = payload.get("_errors")
        if errors:
            rt.note_failures(name, span, errors)
            rt.emit(stem + ".error", {"failedHandlers": list(errors), "errors": errors})
        outcome = None
    finally:
        if cs is not None:
            SPAN.reset(token)  # type: ignore[arg-type]
            failed = payload.get("_errors", {}).get("result") if outcome is None else None
            rec.end(cs, loop.time(), outcome or (failed["type"] if failed else None),
                    failed["message"] if failed else None)
    return payload


async def _degrade(join: _Join, request: dict[str, Any], payload: dict[str, Any], fallback: Any,
                   fallback_event: str | None) -> bool:
    """Graceful degradation (reserved prop ``fallback``): each failed key (``result``
    included) gets the fallback value — for a key with several subscribers, in its failed
    slots — and ``_errors[key].degraded = true``. ``fallback_event``: the value is what
    the event's subscribers return (one → its value, several → an array), each called
    with the request plus ``{key, error}`` under the call's ``timeout``; a key whose
    fallback handler fails (reported) or has no subscriber stays as it was. Returns
    whether ``result`` was degraded."""
    rt = join.rt
    errors: dict[str, Any] = payload["_errors"]
    values: dict[str, Any] = {}
    index = {k: i for i, k in enumerate(join.keys)}
    if fallback_event is None:
        values = {key: fallback for key in errors}
    else:
        subs = rt.bus.subscribers(fallback_event)
        if not subs:
            return False
        loop = join.loop
        runs: list[tuple[str, list[asyncio.Task[Any]]]] = []
        for key, err in errors.items():
            ev = dict(request) if key == "result" else dict(join.bases[index[key]])
            ev["key"] = key
            ev["error"] = dict(err)
            runs.append((key, [loop.create_task(fn(rt, inst, dict(ev)), context=join.ctx)
                               for fn, inst in subs]))
        tasks = [t for _, ts in runs for t in ts]
        try:
            _, late = await asyncio.wait(tasks, timeout=join.timeout_s)
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        for t in late:
            t.cancel()
        for key, ts in runs:
            results: list[Any] = []
            ok = True
            for t in ts:
                if t in late or t.cancelled():
                    ok = False
                    continue
                exc = t.exception()
                if exc is not None:
                    rt.report(exc, f"in handler `{task_handler(t)}` (branch `{key}` of "
                                   f"`{join.service}`)")
                    ok = False
                    continue
                results.append(t.result())
            if ok:
                values[key] = results[0] if len(results) == 1 else results
    for key, value in values.items():
        ki = -1 if key == "result" else index[key]
        first, end = join.key_invs[ki] if ki >= 0 else (0, 0)
        if end - first <= 1:
            payload[key] = value
        else:  # several subscribers: fill the failed slots only
            slots = list(payload[key])
            for i in range(first, end):
                if join.invs[i].err is not None:
                    slots[i - first] = value
            payload[key] = slots
        errors[key] = {**errors[key], "degraded": True}
    return "result" in values


def _parts(join: _Join) -> list[float]:
    """Durations of a joined call's parts: its provider part and each branch invocation
    that started (first attempt to outcome, less the time calls inside it waited for a
    slot)."""
    parts = [join.prov_work]
    for inv in join.invs:
        if inv.t_start >= 0 and inv.t_end >= inv.t_start:
            parts.append(inv.t_end - inv.t_start - inv.waited)
    return parts


def _await_duration(rt: Runtime, request: dict[str, Any], span: int) -> float:
    d = request.get("durationMs")
    if d is not None:
        return _number(d, "durationMs", span)
    lo, hi = request.get("minDurationMs"), request.get("maxDurationMs")
    if lo is None and hi is None:
        return 0.0
    lo_v = _number(lo if lo is not None else hi, "minDurationMs", span)
    hi_v = _number(hi if hi is not None else lo, "maxDurationMs", span)
    if hi_v < lo_v:
        lo_v, hi_v = hi_v, lo_v
    import math
    a, b = math.ceil(lo_v), math.floor(hi_v)
    if b < a:
        return lo_v
    return float(rt._await_rng.randint(a, b))


def _wake(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


async def run_await(rt: Runtime, span: int, request: dict[str, Any]) -> dict[str, Any]:
    """``await { durationMs }`` with no branches or items (SPEC §4.5, rules 20, 34, 50).

    The same payload and ``awaiting.complete`` event as the general path, without a
    join, a timer task or a sleep coroutine: one future and one timer per call, since
    paced handlers are the hot path of large fan-outs.

    Rule 50: it must be indistinguishable from the general path in every observable
    order, so it takes the general path's steps through the ready queue one for one:
    the general path's timer task first runs one step after the call (it sets its timer
    then, or ends at once for 0 ms), and once the timer is done the task takes one step
    to end and its done callback one more (:meth:`_Join.on_provider_done`) before the
    caller wakes. Here :func:`_arm` is that first step and :func:`_fire` the two last;
    so ``durationMs: 0`` suspends like any other call.
    """
    await_ms = _await_duration(rt, request, span)
    loop = rt.loop
    t0 = loop.time()
    fut = loop.create_future()
    pending: list[asyncio.Handle] = []  # the step or timer to cancel if the caller is
    pending.append(loop.call_soon(_arm, loop, fut, await_ms / 1000, pending))  # cancelled
    try:
        await fut
    except BaseException:
        _record_timer(rt, t0, "cancelled")
        raise
    finally:
        pending[0].cancel()
    t1 = _record_timer(rt, t0, None)
    payload = dict(request)
    payload["result"] = float(await_ms)
    ms = _ms(t1 - t0)
    payload["_parallel"] = {"branches": 0, "succeeded": 0, "failed": 0, "wall_ms": ms,
                            "critical_ms": ms}
    rt.emit("awaiting.complete", payload)
    return payload


def _arm(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], delay_s: float,
         pending: list[asyncio.Handle]) -> None:
    """The fast path's first step: set the timer (or finish at once for 0 ms)."""
    if fut.done():
        return
    if delay_s > 0:
        pending[0] = loop.call_at(loop.time() + delay_s, _fire, loop, fut)
    else:  # the timer task ends in its first step; its done callback comes next
        loop.call_soon(_wake, fut)


def _fire(loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any]) -> None:
    """The timer is done: wake the caller as many steps later as the general path does
    (its timer task's last step, then its done callback)."""
    loop.call_soon(loop.call_soon, _wake, fut)


def _record_timer(rt: Runtime, t0: float, err: str | None) -> float:
    """Record one ``await`` timer that started at ``t0``; returns the time now."""
    t1 = rt.loop.time()
    rec = rt.recorder
    if rec is not None:
        if err is None:
            rec.timer(t0, t1)
        else:
            rec.agg("service", "await").count += 1
        if rec.keep_spans:
            rec.end(rec.begin("call", "await", SPAN.get(), t0, attrs={"service": "await"}),
                    t1, err)
    return t1


def _ms(s: float) -> float:
    return round(s * 1000, 3)


def _key_outcome(join: _Join, ki: int) -> tuple[Any, dict[str, Any] | None]:
    """``(value, _errors entry or None)`` of branch key ``ki`` (rules 9, 10, 36)."""
    first, end = join.key_invs[ki]
    err = join.key_err[ki]
    n = end - first
    invs = join.invs
    if n == 1:
        inv = invs[first]
        if inv.err is not None:
            err = {"type": inv.err[0], "message": inv.err[1],
                   "event": join.events[ki], "attempts": inv.attempts}
        return inv.value, err
    if n == 0:
        return None, err
    value = []
    bad: list[int] = []
    first_err: tuple[str, str] | None = None
    attempts = 0
    for i in range(first, end):
        inv = invs[i]
        attempts += inv.attempts
        value.append(inv.value)
        if inv.err is not None:
            bad.append(i - first)
            if first_err is None:
                first_err = inv.err
    if first_err is not None:
        idx = ", ".join(str(b) for b in bad)
        err = {"type": first_err[0],
               "message": f"subscribers [{idx}] of `{join.events[ki]}` failed: "
                          f"{first_err[1]}",
               "event": join.events[ki], "attempts": attempts}
    return value, err


def _assemble(join: _Join, request: dict[str, Any], t_join: float) -> dict[str, Any]:
    """The result payload in rule-7 key order, with `_tools`, `_errors` and `_parallel`."""
    payload = dict(request)
    payload["result"] = join.prov_value if join.prov_err is None else None
    errors: dict[str, Any] = {}
    if join.prov_err is not None:
        kind, msg = join.prov_err
        errors["result"] = {"type": kind, "message": msg, "event": join.service,
                            "attempts": join.prov_attempts}
    failed = 0
    critical = join.prov_t
    for inv in join.invs:
        if inv.t_end - inv.t_start - inv.waited > critical:
            critical = inv.t_end - inv.t_start - inv.waited
    for ki, key in enumerate(join.keys):
        value, err = _key_outcome(join, ki)
        payload[key] = value
        if err is not None:
            errors[key] = err
            failed += 1
    if join.opts is not None and join.opts.tools is not None:
        payload["_tools"] = join.tool_log
    if errors:
        payload["_errors"] = errors
    nb = len(join.keys)
    payload["_parallel"] = {"branches": nb, "succeeded": nb - failed, "failed": failed,
                            "wall_ms": _ms(t_join - join.t0), "critical_ms": _ms(critical)}
    return payload
