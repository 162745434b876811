"""Pass `graph`: the stream execution graph (SPEC §5) and its timing estimate.

The graph is the program *unfolded* from its entry points: the top level (with the
``realize`` of every ``new`` inline, rule 29) and then ``system.start`` (rule 3). Each
trigger instantiates the subscribed handler again, so a handler reached from two
places appears twice. Unfolding stops when a handler would re-enter itself
(``recursive``) or after :data:`MAX_NODES` nodes (``truncated``).

Nodes (``GNode.kind``): ``program`` (the top level), ``handler``, ``call`` (a service
call; its duration is the service latency), ``branch`` (a parallel handler parameter),
``join`` (where a call waits for its provider and branches), ``item`` (a ``handlers``
item), ``emit``; a call with ``tools`` adds a ``branch`` per tool after its first
round, their ``join`` and a second ``call`` (round 2). Edges (``GEdge.kind``): ``seq`` (next statement of a handler, after the
previous finished), ``fanout`` (call → branch, they start together), ``trigger`` (emit,
branch or item → subscribed handler), ``join`` (provider or branch subscriber → join),
``after`` (an item's subscriber → what follows the item).

Timing: every node starts as soon as its predecessors allow (``fanout`` edges:
predecessor's start; all others: predecessor's finish); only calls take time. Each
statement of a handler is counted once (both arms of an ``if``); a loop whose trip count
is known from literals (``for (var x in [..])``, ``while (i < 3)`` with ``var i = 0``
and ``i += 1``, ``for (var i = 0; i < n; i++)``) is unfolded that many times, with the
loop variable bound to each literal element, other loops once. A call's ``timeout``
(literal, or one the loop binds; default 30 000 ms) bounds each attempt of the provider
call and of each branch; an attempt that would take longer times out and, with
``retries: R``, is tried again after the expected backoff (100 ms·2ⁿ) up to R times.
``concurrency: C`` starts the branches C at a time. ``await`` with
``minDurationMs``/``maxDurationMs`` takes their mean; an ``await`` whose duration is not a
literal counts 0 and is reported in ``unknown_durations`` (the estimate is then a lower
bound).
``estimated_ms`` is the latest finish; the critical path is the chain of predecessors
that determined the last node to finish (ties: the later node); ``sequential_ms`` is the sum of all call latencies (everything one
after another); ``speedup = sequential_ms / estimated_ms``. Batches group the calls and
handlers that can run together: a node's batch is the number of calls that must
finish before it can start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cxpar import lang
from cxpar.analysis.model import AnalysedCall, HandlerInfo, ProgramInfo
from cxpar.ast import nodes as n
from cxpar.lang import parse_latency  # noqa: F401 - re-exported for commands
from cxpar.span import Span

if TYPE_CHECKING:
    from cxpar.analysis.pipeline import Compilation

#: Unfolding stops after this many nodes (the graph is then marked ``truncated``).
MAX_NODES = 2000
#: Latency assumed for a plug-in service without an estimate.
PLUGIN_LATENCY_MS = 100.0
#: Loops with a known trip count are unfolded at most this many times.
MAX_UNROLL = 1000

START_EDGES = ("fanout",)


@dataclass(eq=False, slots=True)
class GNode:
    """One node of the stream execution graph."""

    id: int
    kind: str                     #: program, handler, call, branch, join, item, emit
    label: str
    span: Span | None
    duration: float = 0.0         #: ms of own work (calls only)
    start: float = 0.0
    #: ``start + duration``; for ``handler``/``program`` nodes, when their body is done.
    finish: float = 0.0
    batch: int = 0
    critical: bool = False
    parent: int | None = None     #: the node that created this one (display tree)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GEdge:
    """A dependency: ``dst`` starts after ``src`` finished (``fanout``: started)."""

    src: int
    dst: int
    kind: str                     #: seq, fanout, trigger, join, after


@dataclass(eq=False)
class Graph:
    """The stream execution graph with its timing analysis."""

    nodes: list[GNode] = field(default_factory=list)
    edges: list[GEdge] = field(default_factory=list)
    #: Node ids (calls and handlers) per batch, batch 0 first.
    batches: list[list[int]] = field(default_factory=list)
    #: Node ids from the program root to the last node to finish.
    critical_path: list[int] = field(default_factory=list)
    estimated_ms: float = 0.0
    sequential_ms: float = 0.0
    speedup: float = 1.0
    latency: dict[str, float] = field(default_factory=dict)
    truncated: bool = False
    #: ``await``s whose duration is not a literal (counted as 0: a lower bound).
    unknown_durations: int = 0

    def of_kind(self, kind: str) -> list[GNode]:
        return [x for x in self.nodes if x.kind == kind]


class _Budget(Exception):
    """Raised when the node budget is exhausted."""


def backoff_ms(retries: int) -> float:
    """The expected total backoff before ``retries`` retries (100 ms·2ⁿ, capped at 10 s)."""
    return sum(min(100.0 * 2 ** min(i, 20), 10_000.0) for i in range(retries))


def attempts_ms(duration: float, timeout: float, retries: int) -> float:
    """How long a call or branch that needs ``duration`` ms takes under ``timeout`` per
    attempt: as long as it needs, or every attempt times out and is retried."""
    if duration <= timeout:
        return duration
    return (retries + 1) * timeout + backoff_ms(retries)


def _walk(node: n.Node) -> list[n.Node]:
    out = [node]
    for _name, child in n.children(node):
        out.extend(_walk(child))
    return out


class Builder:
    """Unfolds a program into a :class:`Graph`."""

    def __init__(self, info: ProgramInfo, latency: dict[str, float],
                 inputs: tuple[str, ...] = ()) -> None:
        self.info = info
        self.latency = latency
        #: Events the runtime emits after ``system.start`` (a batch stream's
        #: ``input.record``), unfolded when the program subscribes to them.
        self.inputs = inputs
        self.g = Graph(latency=dict(latency))
        self.preds: dict[int, list[GEdge]] = {}
        self.stack: list[int] = []  # ids of handler/realize nodes being unfolded
        self.ends: dict[int, list[int]] = {}  # handler/program node -> its body's end set
        #: Literal values of variables at this point of the unfolding (loop trip counts,
        #: a loop variable bound to each element).
        self.env: dict[str, n.Expr] = {}
        #: join id -> (call id, [(first, last) node ids of each branch subscriber run])
        self.groups: dict[int, tuple[int, list[tuple[int, int]]]] = {}

    # ------------------------------------------------------------------ building

    def node(self, kind: str, label: str, span: Span | None, parent: int | None,
             **detail: Any) -> GNode:
        if len(self.g.nodes) >= MAX_NODES:
            self.g.truncated = True
            raise _Budget
        x = GNode(len(self.g.nodes), kind, label, span, parent=parent, detail=detail)
        self.g.nodes.append(x)
        return x

    def edge(self, src: int, dst: int, kind: str) -> None:
        e = GEdge(src, dst, kind)
        self.g.edges.append(e)
        self.preds.setdefault(dst, []).append(e)

    def link(self, ends: list[int], dst: int, kind: str = "seq") -> None:
        for s in ends:
            self.edge(s, dst, kind)

    def build(self, program: n.Program) -> Graph:
        try:
            root = self.node("program", "top level", program.span, None)
            ends = self.body(program.body, [root.id], root.id)
            self.ends[root.id] = ends
            # after the top level the runtime emits `system.start`, and in a batch run
            # (`--input`, serve) `input.record` with each record: one stream is unfolded
            for name in ("system.start", *self.inputs):
                subs = self.info.subscribers(name)
                if subs:
                    ev = self.node("emit", name, None, root.id, event=name, runtime=True)
                    self.link(ends, ev.id)
                    self.trigger(subs, ev.id)
        except _Budget:
            pass
        self.schedule()
        return self.g

    def trigger(self, subs: list[HandlerInfo], src: int) -> list[list[int]]:
        """Instantiate each subscriber after ``src``; their end sets."""
        return [self.handler(h, src) for h in subs]

    def handler(self, h: HandlerInfo, src: int) -> list[int]:
        label = h.event if h.entity is None else f"{h.entity}: {h.event}"
        x = self.node("handler", label, h.node.event.span, src, event=h.event,
                      entity=h.entity)
        self.edge(src, x.id, "trigger")
        key = id(h.node)
        if key in self.stack:
            x.detail["recursive"] = True
            return [x.id]
        self.stack.append(key)
        try:
            ends = self.body(h.node.body.body, [x.id], x.id)
        finally:
            self.stack.pop()
        self.ends[x.id] = ends
        return ends

    def body(self, stmts: list[n.Stmt], ends: list[int], owner: int) -> list[int]:
        for s in stmts:
            ends = self.stmt(s, ends, owner)
        return ends

    def stmt(self, s: n.Node, ends: list[int], owner: int) -> list[int]:
        """Unfold the calls, emits and ``new``s of ``s`` in evaluation order."""
        if isinstance(s, (n.OnHandler, n.EntityDecl)):
            return ends
        if isinstance(s, n.Emit):
            if s.payload is not None:
                ends = self.stmt(s.payload, ends, owner)
            ev = self.node("emit", s.event.dotted, s.span, owner, event=s.event.dotted)
            self.link(ends, ev.id)
            self.trigger(self.info.subscribers(s.event.dotted), ev.id)
            return [ev.id]
        if isinstance(s, n.ServiceCall):
            return self.call(s, ends, owner)
        if isinstance(s, (n.While, n.ForIn, n.ForC)):
            return self.loop(s, ends, owner)
        if isinstance(s, n.VarDecl):
            if s.init is not None:
                ends = self.stmt(s.init, ends, owner)
            self.bind(s.name.name, s.init)
            return ends
        if isinstance(s, n.Assign) and isinstance(s.target, n.Name):
            ends = self.stmt(s.value, ends, owner)
            self.env.pop(s.target.id, None)
            return ends
        if isinstance(s, n.New):
            for a in s.args:
                ends = self.stmt(a, ends, owner)
            ent = self.info.entities.get(s.cls.name)
            if ent is None or ent.realize is None or id(ent.realize) in self.stack:
                return ends
            self.stack.append(id(ent.realize))
            try:
                return self.body(ent.realize.body.body, ends, owner)
            finally:
                self.stack.pop()
        for _name, child in n.children(s):
            ends = self.stmt(child, ends, owner)
        return ends

    def bind(self, name: str, value: n.Expr | None) -> None:
        if isinstance(value, (n.Number, n.String, n.Array, n.Bool)):
            self.env[name] = value
        else:
            self.env.pop(name, None)

    def loop(self, s: n.While | n.ForIn | n.ForC, ends: list[int], owner: int) -> list[int]:
        """Unfold a loop as many times as its literal trip count says (else once)."""
        items: list[n.Expr | None] = [None]
        var: str | None = None
        if isinstance(s, n.ForIn):
            ends = self.stmt(s.iterable, ends, owner)
            var = s.var.name
            seq = s.iterable
            if isinstance(seq, n.Name):
                seq = self.env.get(seq.id, seq)
            if isinstance(seq, n.Array):
                items = list(seq.items)
        else:
            if isinstance(s, n.ForC) and s.init is not None:
                ends = self.stmt(s.init, ends, owner)
            trips = self.trips(s)
            if trips is not None:
                items = [None] * trips
            if s.cond is not None:
                ends = self.stmt(s.cond, ends, owner)
        for i, item in enumerate(items[:MAX_UNROLL]):
            if var is not None:
                self.bind(var, item)
            before = len(self.g.nodes)
            ends = self.stmt(s.body, ends, owner)
            if isinstance(s, n.ForC) and s.update is not None:
                ends = self.stmt(s.update, ends, owner)
            if len(self.g.nodes) == before and i > 0 or (
                    len(self.g.nodes) == before and var is None):
                break  # nothing that takes time happens in an iteration
        if var is not None:
            self.env.pop(var, None)
        return ends

    def trips(self, s: n.While | n.ForC) -> int | None:
        """``i < 3`` with a literal start and a literal step in the loop: how many times."""
        cond = s.cond
        if not isinstance(cond, n.Binary) or cond.op not in ("<", "<=", ">", ">="):
            return None
        bound: n.Expr
        if isinstance(cond.left, n.Name) and isinstance(cond.right, (n.Number, n.Name)):
            name, bound, op = cond.left.id, cond.right, cond.op
        elif isinstance(cond.right, n.Name) and isinstance(cond.left, n.Number):
            name, bound = cond.right.id, cond.left
            op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[cond.op]
        else:
            return None
        if isinstance(bound, n.Name):
            bound = self.env.get(bound.id, bound)
        start: n.Expr | None = self.env.get(name)
        if isinstance(s, n.ForC) and isinstance(s.init, n.VarDecl) and s.init.name.name == name:
            start = s.init.init
        if not isinstance(start, n.Number) or not isinstance(bound, n.Number):
            return None
        steps = [a for a in _walk(s.body) if isinstance(a, n.Assign)]
        if isinstance(s, n.ForC) and isinstance(s.update, n.Assign):
            steps.append(s.update)
        step = None
        for a in steps:
            if isinstance(a.target, n.Name) and a.target.id == name:
                if a.op in ("+=", "-=") and isinstance(a.value, n.Number) and step is None:
                    step = a.value.value if a.op == "+=" else -a.value.value
                else:
                    return None  # assigned in another way: unknown
        if not step:
            return None
        lo, hi = start.value, bound.value
        if op in ("<", "<=") and step > 0:
            n_trips = (hi - lo) / step
        elif op in (">", ">=") and step < 0:
            n_trips = (lo - hi) / -step
        else:
            return None
        whole = int(n_trips)
        count = whole + (1 if n_trips > whole or op in ("<=", ">=") else 0)
        return max(0, count)

    def call(self, node: n.ServiceCall, ends: list[int], owner: int) -> list[int]:
        ac = self.info.calls.get(id(node))
        if ac is None or ac.function_call:
            return self.stmt(node.arg, ends, owner)
        # Evaluate the props first (nested calls, item extras), then fan out.
        branch_values = {id(b.value) for b in ac.branches}
        if isinstance(node.arg, n.Object):
            for p in node.arg.props:
                if id(p.value) in branch_values:
                    if isinstance(p.value, n.EventPayload):
                        ends = self.stmt(p.value.payload, ends, owner)
                    continue
                if p.key.name == "handlers":
                    for it in ac.items:
                        if it.extra is not None:
                            ends = self.stmt(it.extra, ends, owner)
                    continue
                ends = self.stmt(p.value, ends, owner)
        else:
            ends = self.stmt(node.arg, ends, owner)
        timeout = self.literal_number(ac, "timeout")
        retries = self.literal_number(ac, "retries")
        concurrency = self.literal_number(ac, "concurrency")
        c = self.node("call", ac.service, node.span, owner, service=ac.service,
                      stem=ac.stem, branches=[b.key for b in ac.branches], timeout=timeout)
        limit = timeout if timeout is not None else float(lang.DEFAULT_TIMEOUT_MS)
        tries = int(retries) if retries is not None and retries >= 0 else 0
        c.detail["_limit"] = (limit, tries, int(concurrency) if concurrency else 0)
        latency = self.service_latency(ac)
        # `await`'s own sleep is never cut by `timeout` (it applies to its branches only)
        c.duration = latency if ac.service == "await" else attempts_ms(latency, limit, tries)
        self.link(ends, c.id)
        out = [c.id]
        if ac.branches:
            join = None
            branch_ends: list[list[int]] = []
            runs: list[tuple[int, int]] = []
            for b in ac.branches:
                bx = self.node("branch", f"{b.key}: {b.event}", b.span, c.id, key=b.key,
                               event=b.event)
                self.edge(c.id, bx.id, "fanout")
                for end in self.trigger(self.info.subscribers(b.event), bx.id):
                    branch_ends.append(end)
                branch_ends.append([bx.id])
                runs.append((bx.id, len(self.g.nodes) - 1))
            join = self.node("join", f"join {ac.service}", node.span, c.id)
            self.edge(c.id, join.id, "join")
            for end in branch_ends:
                self.link(end, join.id, "join")
            self.groups[join.id] = (c.id, runs)
            out = [join.id]
        if ac.tools:
            out = self.tool_round(ac, node, c, out)
        for it in ac.items:
            ix = self.node("item", it.event, it.span, c.id, event=it.event)
            self.edge(out[0], ix.id, "seq")
            self.link(out[1:], ix.id, "after")
            subs_ends = self.trigger(self.info.subscribers(it.event), ix.id)
            out = [ix.id] + [e for end in subs_ends for e in end]
        return out

    def tool_round(self, ac: AnalysedCall, node: n.ServiceCall, c: GNode,
                   out: list[int]) -> list[int]:
        """A call with ``tools``: the first model round (the call node) is followed by
        one branch per tool (run in parallel, like branches) and a second round — the
        usual shape (the sim's, and a model's that calls each tool once)."""
        ends: list[list[int]] = []
        for t in ac.tools:
            tx = self.node("branch", f"tool: {t.event}", t.span, c.id, key=f"tool {t.event}",
                           event=t.event, tool=True)
            self.edge(c.id, tx.id, "seq")  # after the first round's answer
            ends.append([tx.id])
            ends.extend(self.trigger(self.info.subscribers(t.event), tx.id))
        tools_join = self.node("join", f"tools {ac.service}", node.span, c.id, tools=True)
        for end in ends:
            self.link(end, tools_join.id, "join")
        second = self.node("call", f"{ac.service} (round 2)", node.span, c.id,
                           service=ac.service, stem=ac.stem, branches=[], round=2,
                           timeout=self.literal_number(ac, "timeout"))
        second.duration = self.service_latency(ac)
        self.edge(tools_join.id, second.id, "seq")
        if out != [c.id]:  # parallel handler parameters join too
            self.link(out, second.id, "join")
        return [second.id]

    def literal_number(self, ac: AnalysedCall, key: str) -> float | None:
        v = ac.reserved.get(key)
        if isinstance(v, n.Name):
            v = self.env.get(v.id, v)
        return v.value if isinstance(v, n.Number) else None

    def service_latency(self, ac: AnalysedCall) -> float:
        if ac.service == "await" and isinstance(ac.node.arg, n.Object):
            props = {k: self.env.get(v.id, v) if isinstance(v, n.Name) else v
                     for k, v in ac.request}
            d = props.get("durationMs")
            if isinstance(d, n.Number):
                return d.value
            lo, hi = props.get("minDurationMs"), props.get("maxDurationMs")
            known = [x.value for x in (lo, hi) if isinstance(x, n.Number)]
            if known and all(x is None or isinstance(x, n.Number) for x in (lo, hi)):
                return sum(known) / len(known)  # a seeded uniform choice: its mean
            if any(k in props for k in ("durationMs", "minDurationMs", "maxDurationMs")):
                self.g.unknown_durations += 1
            return 0.0
        if ac.service in self.latency:
            return float(self.latency[ac.service])
        return PLUGIN_LATENCY_MS

    # ---------------------------------------------------------------- timing

    def schedule(self) -> None:
        """ASAP start/finish, batches, critical path and speedup (nodes are in topo order)."""
        g = self.g
        via: dict[int, int] = {}
        slots: dict[int, list[float]] = {}  # call id -> free times of its `concurrency` slots
        for x in g.nodes:
            start, level, best = 0.0, 0, None
            for e in self.preds.get(x.id, []):
                p = g.nodes[e.src]
                t = p.start if e.kind in START_EDGES else p.finish
                if best is None or t > start or (
                        t == start and p.kind == "call" and g.nodes[best].kind != "call"):
                    best = p.id
                start = max(start, t)
                level = max(level, p.batch + (1 if p.kind == "call" and e.kind
                                              not in START_EDGES else 0))
            if x.kind == "branch":
                start = self.branch_start(x, start, slots)
            elif x.id in self.groups:
                start, best = self.join_start(x, start, best)
            x.start = start
            x.finish = start + x.duration
            x.batch = level
            if best is not None:
                via[x.id] = best
        if not g.nodes:
            return
        last = max(g.nodes, key=lambda x: (x.finish, x.id))
        path = [last.id]
        while path[-1] in via:
            path.append(via[path[-1]])
        path.reverse()
        g.critical_path = path
        for i in path:
            g.nodes[i].critical = True
        g.estimated_ms = last.finish
        g.sequential_ms = sum(x.duration for x in g.nodes if x.kind == "call")
        g.speedup = g.sequential_ms / g.estimated_ms if g.estimated_ms > 0 else 1.0
        for hid, ends in self.ends.items():  # display: a handler finishes with its body
            g.nodes[hid].finish = max([g.nodes[hid].start] + [g.nodes[e].finish for e in ends])
        levels: dict[int, list[int]] = {}
        for x in g.nodes:
            if x.kind in ("call", "handler"):
                levels.setdefault(x.batch, []).append(x.id)
        g.batches = [levels[k] for k in sorted(levels)]


    def run_end(self, call: GNode, first: int, last: int) -> float:
        """When a branch subscriber's run (nodes ``first..last``) ends under the call's
        timeout and retries; nodes past that end are cut (they are cancelled)."""
        g = self.g
        limit, tries, _conc = call.detail["_limit"]
        begin = g.nodes[first].start
        end = max(g.nodes[i].finish for i in range(first, last + 1))
        done = begin + attempts_ms(end - begin, limit, tries)
        if done < end:
            for i in range(first, last + 1):
                y = g.nodes[i]
                y.start, y.finish = min(y.start, done), min(y.finish, done)
        return done

    def branch_start(self, x: GNode, start: float, slots: dict[int, list[float]]) -> float:
        """With ``concurrency: C``, a branch waits for one of the call's C slots."""
        call = self.g.nodes[x.parent] if x.parent is not None else None
        if call is None or not call.detail.get("_limit", (0, 0, 0))[2]:
            return start
        import heapq

        conc = call.detail["_limit"][2]
        free = slots.setdefault(call.id, [call.start] * conc)
        join_id = next(j for j, (c, _r) in self.groups.items() if c == call.id)
        runs = self.groups[join_id][1]
        k = next(i for i, (first, _last) in enumerate(runs) if first == x.id)
        if k > 0:  # the previous branch has been scheduled: its slot frees at its end
            heapq.heappush(free, self.run_end(call, *runs[k - 1]))
        return max(start, heapq.heappop(free))

    def join_start(self, x: GNode, start: float, best: int | None,
                   ) -> tuple[float, int | None]:
        """A join waits for the provider call and each branch run, each cut by timeout."""
        g = self.g
        call_id, runs = self.groups[x.id]
        call = g.nodes[call_id]
        start, best = call.finish, call_id
        for first, last in runs:
            end = self.run_end(call, first, last)
            if end > start:
                start = end
                last_node = max(range(first, last + 1), key=lambda i: g.nodes[i].finish)
                best = last_node
        return start, best


#: What the runtime emits after ``system.start`` in a batch stream or a served run.
RECORD_INPUTS = ("input.record",)


def build_graph(info: ProgramInfo, program: n.Program,
                latency: dict[str, float] | None = None,
                inputs: tuple[str, ...] = RECORD_INPUTS) -> Graph:
    """The stream execution graph of an analysed program; ``inputs``: events the runtime
    emits after ``system.start`` (by default a program that handles records is drawn as
    one batch stream or served run; ``()`` for ``cxpar run FILE`` without ``--input``)."""
    lat = {**lang.DEFAULT_LATENCY_MS, **(latency or {})}
    return Builder(info, lat, inputs).build(program)


def run(comp: Compilation) -> None:
    """Build ``comp.graph`` with ``comp.latency`` over the defaults."""
    comp.graph = build_graph(comp.info, comp.program, comp.latency)
