"""Pass `events`: who emits and who handles what (SPEC §5, rules 3, 4, 16).

Warnings only: a parallel branch or ``handlers`` item with no subscriber, an ``emit``
with no subscriber, a handler nothing triggers, a branch event with several subscribers
(its value becomes an array) and a prop that reads a value but is named like an event
the program uses (rule 16).

A handler counts as triggered when some literal event the program can produce matches
its pattern (``any`` matches one part, rule 4): ``emit`` targets, branch and item events,
``<stem>.complete``/``<stem>.error`` of the calls present, and the runtime's own
``system.start`` and ``system.circuit.*``. A ``/// @external`` doc comment on a handler
says that its events come from outside the program.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxpar.analysis.model import NameKind, ProgramInfo, matches
from cxpar.analysis.resolve import event_chain
from cxpar.ast import nodes as n
from cxpar.diagnostics.model import Diagnostic, Label, warning

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

#: Events the runtime emits by itself (rule 3; circuit breaker transitions, §6.2).
#: Events the runtime emits: `system.start` always, `input.record` in batch runs
#: (`cxpar run --input`).
RUNTIME_EVENTS = ("system.start", "input.record")
#: Events the runtime consumes itself: `output.record` lines of batch runs.
RUNTIME_CONSUMED = ("output.record",)
RUNTIME_PREFIXES = ("system.circuit.",)


def runtime_emits(pattern: tuple[str, ...]) -> bool:
    """Whether the runtime itself may emit events matching ``pattern``."""
    dotted = ".".join(pattern)
    if any(matches(pattern, e) for e in RUNTIME_EVENTS):
        return True
    return any(dotted.startswith(p) or (pattern[:2] == ("system", "any") and len(pattern) > 2)
               for p in RUNTIME_PREFIXES)


class Events:
    """Cross-checks subscribers against everything that can trigger them."""

    def __init__(self, comp: Compilation) -> None:
        self.comp = comp
        self.info: ProgramInfo = comp.info
        self.diags: list[Diagnostic] = comp.diagnostics

    def no_subscriber_help(self, event: str) -> str:
        from cxpar.diagnostics.suggest import suggest

        hint = suggest(event, self.info.handled)
        if hint:
            return f"did you mean `{hint}`?"
        return f"add a handler: `on {event} (event) {{ ... }}`"

    def run(self) -> None:
        info = self.info
        emits = [e for e in self.comp.nodes if isinstance(e, n.Emit)]
        for e in emits:
            info.emitted.add(e.event.dotted)
        info.emitted.update(RUNTIME_EVENTS)
        unheard: dict[str, list[n.Emit]] = {}
        for e in emits:
            if not info.subscribers(e.event.dotted) and e.event.dotted not in RUNTIME_CONSUMED:
                unheard.setdefault(e.event.dotted, []).append(e)
        for name, where in unheard.items():
            more = len(where) - 1
            self.diags.append(warning(
                "CX403", f"no handler for emitted event `{name}`", where[0].event.span,
                label="nothing in this program subscribes to it",
                notes=(f"emitted {more} more time{'s' if more > 1 else ''} in this file",)
                if more else (),
                help=self.no_subscriber_help(name)))
        warned_returns: set[int] = set()
        for call in info.call_list:
            for b in call.branches:
                subs = info.subscribers(b.event)
                for h in subs:
                    if id(h.node) not in warned_returns and not always_returns(h.node.body):
                        warned_returns.add(id(h.node))
                        self.no_return(h.node, b.key, b.event)
                if not subs:
                    self.diags.append(warning(
                        "CX401", f"no handler for parallel handler parameter `{b.key}: "
                        f"{b.event}`", b.value.span if not isinstance(b.value, n.EventPayload)
                        else b.value.event.span,
                        label="this branch will fail with `no_handler`",
                        help=self.no_subscriber_help(b.event)))
                elif len(subs) > 1:
                    self.diags.append(warning(
                        "CX405", f"`{b.event}` has {len(subs)} handlers, so `{b.key}` "
                        "becomes an array", b.span, label="several subscribers",
                        labels=tuple(Label(h.node.event.span, "subscribes here")
                                     for h in subs[:3]),
                        notes=(f"and {len(subs) - 3} more subscribers",) if len(subs) > 3 else (),
                        help="the value is the array of their results in subscription order;"
                             " keep one handler if you want a single value"))
            for it in call.items:
                if not info.subscribers(it.event):
                    span = it.span
                    self.diags.append(warning(
                        "CX402", f"no handler for `handlers` item `{it.event}`", span,
                        label="this item will be skipped",
                        help=self.no_subscriber_help(it.event)))
            for tool in call.tools:
                if not info.subscribers(tool.event):
                    self.diags.append(warning(
                        "CX409", f"no handler for tool `{tool.event}`", tool.span,
                        label="if the model calls it, the call gets a `no_handler` error",
                        help=self.no_subscriber_help(tool.event)))
            for key, value in call.request:
                self.shadowed(key, value)
        emitted = info.emitted
        for h in info.handlers:
            if h.external or runtime_emits(h.parts):
                continue
            if "any" not in h.parts:
                if h.event in emitted:
                    continue
            elif any(matches(h.parts, e) for e in emitted):
                continue
            self.diags.append(warning(
                "CX404", f"handler for `{h.event}` is never triggered", h.node.event.span,
                label="nothing in this program emits this event",
                help="if it comes from outside the program, add `/// @external` above the "
                     "handler"))

    def no_return(self, h: n.OnHandler, key: str, event: str) -> None:
        """CX408: a branch handler that can end without `return` (its value is null)."""
        self.diags.append(warning(
            "CX408", f"this branch's value will be null: the handler for `{h.event.dotted}` "
                     "can end without `return`", h.event.span,
            label=f"runs as the branch `{key}: {event}`",
            help="`return` the branch's value on every path (a handler that ends without "
                 f"`return` gives null, so `{key}` would be null)"))

    def shadowed(self, key: str, value: n.Expr) -> None:
        """Rule 16: ``key: a.b`` with ``a`` bound, while ``a.b`` is also an event."""
        if not isinstance(value, n.Member):
            return
        ref = self.info.ref(value)
        ch = event_chain(value)
        if ref is None or ref.kind is not NameKind.PROPERTY or ch is None:
            return
        dotted = ".".join(ch[1])
        if dotted in self.info.emitted or self.info.subscribers(dotted):
            self.diags.append(warning(
                "CX406", f"`{key}: {dotted}` reads a value, not the event `{dotted}`",
                value.span, label=f"`{ch[0].id}` is declared, so this is a property read",
                help=f"rename `{ch[0].id}` if you meant the parallel handler parameter "
                     f"`{dotted}`"))


def run(comp: Compilation) -> None:
    """Warn about events without subscribers and handlers without triggers."""
    Events(comp).run()


def always_returns(s: n.Stmt) -> bool:
    """Whether running ``s`` always ends in a `return` (or never falls through)."""
    if isinstance(s, n.Return):
        return True
    if isinstance(s, n.Block):
        return any(always_returns(x) for x in s.body)
    if isinstance(s, n.If):
        return s.orelse is not None and always_returns(s.then) and always_returns(s.orelse)
    if isinstance(s, (n.While, n.ForC)):
        cond = s.cond
        endless = cond is None or (isinstance(cond, n.Bool) and cond.value)
        return endless and not _breaks(s.body)
    return False


def _breaks(s: n.Node) -> bool:
    """Whether a `break` in ``s`` leaves the loop whose body ``s`` is."""
    if isinstance(s, n.Break):
        return True
    if isinstance(s, (n.While, n.ForC, n.ForIn, n.OnHandler, n.Expr)):
        return False  # a nested loop's `break` is its own
    return any(_breaks(c) for _, c in n.children(s))
