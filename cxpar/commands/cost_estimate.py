"""``cxpar graph --cost``: the tokens and cost of one run, estimated from the stream
execution graph before spending anything (issue 19).

Every call node of the graph counts once (the graph unfolds the program from its entry
points: both arms of an ``if``, a counting loop as many times as it runs, up to
``MAX_UNROLL``); a longer loop scales its calls by the trip counts of
:mod:`cxpar.analysis.trips`, and a loop whose count is not known before running counts
once (the estimate says so). Its request is rendered statically —
literal strings and numbers as they are, every part computed at run time as
:data:`DYNAMIC_CHARS` characters — and priced with the sim provider's own estimate
(:func:`cxpar.runtime.providers.sim.sim_usage`): the user message / 4 in, the sim's
answer / 4 out. ``await`` never reaches a provider; ``learn`` and an ``is``/``not``
with a literal ``condition`` send no request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cxpar.ast import nodes as n

__all__ = ["CostEstimate", "estimate_cost", "DYNAMIC_CHARS"]

#: Characters assumed for each part of a request that is only known at run time.
DYNAMIC_CHARS = 64
_DYNAMIC = "x" * DYNAMIC_CHARS


@dataclass
class ServiceEstimate:
    calls: int = 0
    sites: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float | None = 0.0


@dataclass
class CostEstimate:
    """Per service and in total; ``cost_usd`` None when a price is missing."""

    services: dict[str, ServiceEstimate] = field(default_factory=dict)
    dynamic_parts: int = 0
    #: Loops around calls whose trip count is only known at run time (counted once).
    unknown_loops: int = 0
    model: str | None = None

    @property
    def total(self) -> ServiceEstimate:
        t = ServiceEstimate()
        for s in self.services.values():
            t.calls += s.calls
            t.sites += s.sites
            t.tokens_in += s.tokens_in
            t.tokens_out += s.tokens_out
            t.cost_usd = None if t.cost_usd is None or s.cost_usd is None \
                else t.cost_usd + s.cost_usd
        return t

    def to_data(self) -> dict[str, Any]:
        def row(s: ServiceEstimate) -> dict[str, Any]:
            return {"calls": s.calls, "call_sites": s.sites, "tokens_in": s.tokens_in,
                    "tokens_out": s.tokens_out,
                    "cost_usd": None if s.cost_usd is None else round(s.cost_usd, 10)}

        return {"model": self.model, "dynamic_chars": DYNAMIC_CHARS,
                "dynamic_parts": self.dynamic_parts, "unknown_loops": self.unknown_loops,
                "services": {k: row(v) for k, v in sorted(self.services.items())},
                "total": row(self.total)}

    def lines(self) -> list[str]:
        from cxpar.runtime.cost import fmt_usd

        t = self.total
        out = [f"cost estimate (one run, sim token estimates, model {self.model or '?'}): "
               f"{t.calls} calls ({t.sites} call sites), {t.tokens_in} tokens in, "
               f"{t.tokens_out} tokens out, cost {fmt_usd(t.cost_usd)}"]
        for name, s in sorted(self.services.items()):
            out.append(f"  {name:<10} {s.calls:>7} calls {s.tokens_in:>9} in "
                       f"{s.tokens_out:>9} out  {fmt_usd(s.cost_usd)}")
        if self.dynamic_parts:
            out.append(f"  ({self.dynamic_parts} parts known only at run time counted as "
                       f"{DYNAMIC_CHARS} characters each)")
        if self.unknown_loops:
            out.append(f"  ({self.unknown_loops} loop{'s' if self.unknown_loops != 1 else ''}"
                       " whose trip count is known only at run time counted once)")
        if t.cost_usd is None:
            out.append("  (no price: add [pricing.MODEL] to cxpar.toml or pass "
                       "--price IN,OUT)")
        return out


class _Static:
    """Renders request expressions as far as they are known before running."""

    def __init__(self) -> None:
        self.dynamic = 0

    def value(self, e: n.Expr) -> Any:
        if isinstance(e, n.String):
            return e.value
        if isinstance(e, n.Number):
            return float(e.value)
        if isinstance(e, n.Bool):
            return e.value
        if isinstance(e, n.Null):
            return None
        if isinstance(e, n.Object):
            return {p.key.name: self.value(p.value) for p in e.props}
        if isinstance(e, n.Array):
            return [self.value(x) for x in e.items]
        if isinstance(e, n.Binary) and e.op == "+":
            left, right = self.value(e.left), self.value(e.right)
            if isinstance(left, str) or isinstance(right, str):
                from cxpar.runtime.values import to_str

                return to_str(left) + to_str(right)
            if isinstance(left, float) and isinstance(right, float):
                return left + right
        self.dynamic += 1
        return _DYNAMIC


def estimate_cost(comp: Any, settings: Any) -> CostEstimate:
    """The estimate for an analysed program ``comp`` priced with ``settings``' prices."""
    from cxpar.analysis.graph import MAX_UNROLL
    from cxpar.analysis.trips import trip_counts
    from cxpar.runtime.cost import meter_for
    from cxpar.runtime.providers.base import Usage
    from cxpar.runtime.providers.sim import sim_usage

    graph = comp.graph
    calls_by_span = {id(ac.node): ac for ac in comp.info.calls.values()}
    by_span = {}
    for ac in calls_by_span.values():
        by_span[(ac.node.span.line, ac.node.span.col)] = ac
    pricing = meter_for(settings).pricing
    est = CostEstimate(model=pricing.run_model)
    trips = trip_counts(comp.program)
    est.unknown_loops = trips.unknown
    static = _Static()
    # The graph already unfolds loops with a literal trip count (up to MAX_UNROLL times),
    # so each of its call nodes is one call; only a loop longer than that is scaled up.
    copies: dict[tuple[int, int], int] = {}
    for node in graph.nodes if graph is not None else ():
        if node.kind == "call" and node.span is not None:
            key = (node.span.line, node.span.col)
            copies[key] = copies.get(key, 0) + 1
    for node in graph.nodes if graph is not None else ():
        if node.kind != "call" or node.span is None:
            continue
        ac = by_span.get((node.span.line, node.span.col))
        service = node.label
        row = est.services.get(service)
        if row is None:  # unknown without a price for the run's model, even for 0 tokens
            row = est.services[service] = ServiceEstimate(
                cost_usd=pricing.cost(Usage(0, 0, pricing.run_model)))
        span = (node.span.line, node.span.col)
        trip = trips.times.get(span, 1)
        times = max(1, round(trip / copies[span])) if trip > MAX_UNROLL else 1
        row.sites += 1
        row.calls += times
        if service == "await" or ac is None:
            continue
        request = {key: static.value(expr) for key, expr in ac.request}
        usage = sim_usage(service, request, _answer(service, request))
        if usage is None:
            continue
        row.tokens_in += usage.input_tokens * times
        row.tokens_out += usage.output_tokens * times
        cost = pricing.cost(usage)
        row.cost_usd = None if cost is None or row.cost_usd is None \
            else row.cost_usd + cost * times
    est.dynamic_parts = static.dynamic
    return est


def _answer(service: str, request: dict[str, Any]) -> Any:
    """What the sim would answer (its length is what counts)."""
    from cxpar.runtime.providers.base import CallContext
    from cxpar.runtime.providers.sim import SimProvider

    return SimProvider().answer(service, request, CallContext(service, service, None, 1, None))
