"""``--stats`` and ``--stats-json``: what the :class:`~cxpar.runtime.tracing.Recorder`
saw, as one document (schema in docs/cli.md) and as tables on stderr.

Definitions (each column is exactly this):

- **calls**: service calls the program made (one per evaluated ``think {…}``, whatever
  its attempts); **failures**: calls whose ``result`` ended in ``_errors`` (timeout,
  provider, circuit_open, budget_exceeded); **retries**: extra requests — the call's
  ``retries`` attempts plus the provider's own transport retries.
- **p50/p95 ms**: latency of the service's requests (one per attempt, from sending it to
  its outcome; nearest rank, index ``round(p·(n−1))`` of the sorted values); ``await``:
  the timer's duration. For a handler: its invocations, first start to outcome.
- **queued ms**: time calls waited for a concurrency slot before their requests.
- **rate_wait_ms** (shown when non-zero): of the queued time, what calls waited for
  their endpoint's ``rpm``/``tpm`` room or a pause it asked for (issue 20).
- **ttft_ms** (shown for streamed calls): median time from sending a ``stream:``
  request to its first chunk.
- **tokens in/out, cost**: summed over every request that reported usage, failed ones
  included; cost is ``null`` (unknown) when the run has no prices or a request had none.
  A handler's tokens are those of the calls it made itself.
- **critical ms**: the time this service (its calls' own time) or handler (its own code,
  waiting to start included) spends on the run's critical path: the chain of work, each
  piece started by or waited for by the next, that ends when the run ends (found by
  walking the spans backwards from the last one to finish). The rows' critical ms sum
  to the run's wall time.
- **speedup**: for calls with branches, how much longer they would take if the provider
  call and every branch ran one after another: (wall + Σparts − max part) / wall,
  summed over the calls (≥ 1).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from typing import IO, Any

from .tracing import Recorder, Span, _Agg

__all__ = ["build_stats", "rows", "render", "critical_path", "percentile", "queue_rows"]

#: Time comparisons on the critical path tolerate this much (s) float noise.
EPS = 1e-9
#: At most this many steps of the critical path are listed in ``--stats-json``.
MAX_STEPS = 10_000


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank: the sorted value at index ``round(p·(n−1))`` (0 when empty)."""
    if not values:
        return 0.0
    vals = sorted(values)
    return vals[min(len(vals) - 1, max(0, round(p * (len(vals) - 1))))]


def _ms(s: float) -> float:
    return round(s * 1000, 3)


def run_cost(rec: Recorder, unpriced: int, cost: float) -> float | None:
    """A summed cost as shown: None (unknown) without prices or when any request was
    unpriced, else rounded to 1e-10 USD."""
    meter = rec.meter
    if meter is None or not meter.pricing.any or unpriced:
        return None
    return round(cost, 10)


# ---------------------------------------------------------------- critical path

_QUIESCENT = ("run", "stream")


def critical_path(rec: Recorder) -> list[tuple[Span, float, float]]:
    """The run's critical path as ``(span, t0, t1)`` pieces in time order, each piece a
    stretch of a span's own time (not inside one of its awaited children).

    A run (or batch stream) ends when its last piece of work does, so the walk starts at
    the span inside it that finished last and goes backwards: before an emitted handler
    comes the span that emitted it, up to the emit (the wait to start is the handler's);
    inside a span, the awaited child that ended last before the current time (a retry
    attempt leads to the attempt it retried, the wait between them being the retry's);
    the stretches no child covers are the span's own.
    """
    root = rec.root
    if root is None or not root.done:
        return []
    kids: dict[int, list[Span]] = defaultdict(list)
    members: dict[int, list[Span]] = defaultdict(list)
    for s in rec.spans:
        if not s.done or s is root:
            continue
        if s.parent is not None and s.awaited:
            kids[s.parent.id].append(s)
        q = s.parent
        while q is not None and q.kind not in _QUIESCENT:
            q = q.parent
        if q is not None:
            members[q.id].append(s)
    ends: dict[int, list[float]] = {}
    pos: dict[int, int] = {}
    for table in (kids, members):
        for ks in table.values():
            ks.sort(key=lambda k: (k.t1, -k.t0))
    for pid, ks in kids.items():
        ends[pid] = [k.t1 for k in ks]
        for i, k in enumerate(ks):
            pos[k.id] = i
    mends = {pid: [k.t1 for k in ks] for pid, ks in members.items()}
    out: list[tuple[Span, float, float]] = []

    def before(table: dict[int, list[Span]], tends: dict[int, list[float]], span: Span,
               t: float, hi: int) -> int:
        # index of the child that ended last by t, below index hi (-1: none)
        ks = table.get(span.id)
        if not ks:
            return -1
        i = min(hi, bisect_right(tends[span.id], t + EPS)) - 1
        while i >= 0 and ks[i].t0 < span.t0 - EPS:
            i -= 1
        return i

    def inside(span: Span, t: float) -> None:
        # frames: [span, time walked back to, children index bound, retried attempt to
        # go to next, its retry]; each child is taken at most once (the bound).
        stack: list[list[Any]] = [[span, t, 1 << 62, None, None]]
        while stack:
            fr = stack[-1]
            sp, tt, hi, forced = fr[0], fr[1], fr[2], fr[3]
            c: Span | None = None
            if forced is not None and forced.t1 <= tt + EPS and pos[forced.id] < hi:
                c = forced
                if tt > c.t1 + EPS:
                    out.append((fr[4], c.t1, tt))  # waiting to retry
            else:
                i = before(kids, ends, sp, tt, hi)
                if i >= 0:
                    c = kids[sp.id][i]
                    if tt > c.t1 + EPS:
                        out.append((sp, c.t1, tt))
            if c is None:
                if tt > sp.t0 + EPS:
                    out.append((sp, sp.t0, tt))
                stack.pop()
                continue
            fr[1] = min(tt, c.t0)
            fr[2] = pos[c.id]
            fr[3] = c.prev
            fr[4] = c
            if c.kind in _QUIESCENT:
                chain(c, c.t1)
            else:
                stack.append([c, c.t1, 1 << 62, None, None])

    def chain(q: Span, t: float) -> None:
        # q ends at quiescence: start from its work that finished last before t.
        i = before(members, mends, q, t, 1 << 62)
        if i < 0:
            inside(q, t)
            return
        e = members[q.id][i]
        if t > e.t1 + EPS:
            out.append((q, e.t1, t))
        x = e
        if x.kind in _QUIESCENT:
            chain(x, x.t1)
        else:
            inside(x, x.t1)
        while True:
            p = x.parent
            if x.awaited:
                tp = x.t0
            else:
                if x.t0 > x.trigger + EPS:
                    out.append((x, x.trigger, x.t0))  # emitted, waiting to start
                tp = x.trigger
            if p is None or p is q or p.kind in _QUIESCENT:
                inside(q, min(tp, t))
                return
            inside(p, min(tp, p.t1))
            x = p

    chain(root, root.t1)
    out.reverse()
    return out


def _owner_key(span: Span) -> tuple[str, str]:
    o = span.owner()
    if o.kind == "call":
        return "service", str(o.attrs.get("service", o.name))
    if o.kind == "handler":
        return "handler", str(o.attrs.get("handler", o.name))
    return "handler", "(top level)"


def _usage_by_call(rec: Recorder) -> dict[int, list[Span]]:
    by: dict[int, list[Span]] = defaultdict(list)
    for s in rec.spans:
        if s.usage is not None:
            by[s.owner().id].append(s)
    return by


def _critical(rec: Recorder) -> tuple[dict[tuple[str, str], float], dict[str, Any]]:
    path = critical_path(rec)
    per: dict[tuple[str, str], float] = defaultdict(float)
    steps: list[dict[str, Any]] = []
    calls: dict[int, Span] = {}
    prev: Span | None = None
    root = rec.root
    t_base = root.t0 if root is not None else 0.0
    for span, a, b in path:
        key = _owner_key(span)
        per[key] += b - a
        o = span.owner()
        if o.kind == "call":
            calls[o.id] = o
        if prev is o and steps:
            steps[-1]["ms"] += b - a
        else:
            steps.append({"kind": "service" if o.kind == "call" else
                          ("handler" if o.kind == "handler" else o.kind),
                          "name": key[1] if o.kind in ("call", "handler") else o.name,
                          "start_ms": _ms(a - t_base), "ms": b - a})
        prev = o
    for st in steps:
        st["ms"] = _ms(st["ms"])
    usage = _usage_by_call(rec)
    tin = tout = unpriced = 0
    cost = 0.0
    for cid in calls:
        for s in usage.get(cid, ()):
            assert s.usage is not None
            tin += s.usage.input_tokens
            tout += s.usage.output_tokens
            if s.cost is None:
                unpriced += 1
            else:
                cost += s.cost
    total = sum(b - a for _, a, b in path)
    doc: dict[str, Any] = {
        "ms": _ms(total),
        "calls": len(calls),
        "tokens_in": tin, "tokens_out": tout, "cost_usd": run_cost(rec, unpriced, cost),
        "services": {k[1]: _ms(v) for k, v in sorted(per.items()) if k[0] == "service"},
        "handlers": {k[1]: _ms(v) for k, v in sorted(per.items()) if k[0] == "handler"},
        "steps": steps[:MAX_STEPS],
    }
    if len(steps) > MAX_STEPS:
        doc["steps_truncated"] = len(steps) - MAX_STEPS
    return per, doc


# ---------------------------------------------------------------- documents

def _service_doc(rec: Recorder, a: _Agg) -> dict[str, Any]:
    return {"calls": a.count, "failures": a.failures, "retries": a.retries,
            "tokens_in": a.tokens_in, "tokens_out": a.tokens_out,
            "cost_usd": run_cost(rec, a.unpriced, a.cost),
            "p50_ms": _ms(percentile(a.durations, 0.5)),
            "p95_ms": _ms(percentile(a.durations, 0.95)),
            "queued_ms": _ms(a.queued_s), "rate_wait_ms": _ms(a.rate_wait_s),
            "ttft_ms": _ms(percentile(a.ttfts, 0.5)) if a.ttfts else None}


def _dist(values: Sequence[float]) -> dict[str, float]:
    """Total, p50, p95 and max (costs rounded to 1e-10 like every cost)."""
    return {k: round(v, 10) for k, v in (
        ("total", sum(values)), ("p50", percentile(values, 0.5)),
        ("p95", percentile(values, 0.95)), ("max", max(values) if values else 0))}


def _streams(rec: Recorder) -> dict[str, Any] | None:
    a = rec.aggs.get(("stream", "stream"))
    if a is None:
        return None
    doc: dict[str, Any] = {"count": a.count, "failures": a.failures,
                           "p50_ms": _ms(percentile(a.durations, 0.5)),
                           "p95_ms": _ms(percentile(a.durations, 0.95)),
                           "max_ms": _ms(max(a.durations) if a.durations else 0.0)}
    if not rec.streams:
        return doc
    tin: dict[int, int] = {s.pid: 0 for s in rec.streams}
    tout = dict(tin)
    cost: dict[int, float] = {pid: 0.0 for pid in tin}
    unpriced = 0
    for s in rec.spans:
        if s.usage is not None and s.pid in tin:
            tin[s.pid] += s.usage.input_tokens
            tout[s.pid] += s.usage.output_tokens
            if s.cost is None:
                unpriced += 1
            else:
                cost[s.pid] += s.cost
    doc["tokens_in"] = _dist(list(tin.values()))
    doc["tokens_out"] = _dist(list(tout.values()))
    priced = run_cost(rec, unpriced, 0.0) is not None
    doc["cost_usd"] = _dist(list(cost.values())) if priced else None
    return doc


def build_stats(rec: Recorder) -> dict[str, Any]:
    """The ``--stats-json`` document: ``services``, ``total``, ``critical_path``,
    ``streams`` (null for a run without ``--input``), ``queues`` (the waits for a slot,
    :func:`queue_rows`)."""
    services = {name: _service_doc(rec, a)
                for (cat, name), a in sorted(rec.aggs.items()) if cat == "service"}
    _, crit = _critical(rec)
    root = rec.root
    tin = sum(a.tokens_in for (c, _), a in rec.aggs.items() if c == "service")
    tout = sum(a.tokens_out for (c, _), a in rec.aggs.items() if c == "service")
    unpriced = sum(a.unpriced for (c, _), a in rec.aggs.items() if c == "service")
    cost = sum(a.cost for (c, _), a in rec.aggs.items() if c == "service")
    total = {"calls": sum(s["calls"] for s in services.values()),
             "tokens_in": tin, "tokens_out": tout, "cost_usd": run_cost(rec, unpriced, cost),
             "wall_ms": _ms(root.t1 - root.t0) if root is not None and root.done else None}
    return {"services": services, "total": total, "critical_path": crit,
            "streams": _streams(rec), "queues": queue_rows(rec)}


def rows(rec: Recorder) -> list[dict[str, Any]]:
    """One row per service, handler and stream kind, as the ``--stats`` table shows."""
    per: dict[tuple[str, str], float] = {}
    if rec.root is not None and rec.root.done:
        per, _ = _critical(rec)
    out = []
    for (cat, name), a in sorted(rec.aggs.items()):
        if cat == "stream":
            continue
        if not a.count and not a.tokens_in and not a.tokens_out and (cat, name) not in per:
            continue
        out.append({
            "kind": cat, "name": name, "count": a.count, "failures": a.failures,
            "retries": a.retries,
            "p50_ms": _ms(percentile(a.durations, 0.5)),
            "p95_ms": _ms(percentile(a.durations, 0.95)),
            "queued_ms": _ms(a.queued_s) if cat == "service" else None,
            "tokens_in": a.tokens_in, "tokens_out": a.tokens_out,
            "cost_usd": run_cost(rec, a.unpriced, a.cost),
            "critical_ms": _ms(per[(cat, name)]) if (cat, name) in per else
            (0.0 if per else None),
            "speedup": round(a.sequential_s / a.wall_s, 2) if a.wall_s > 0 else None,
            "rate_wait_ms": _ms(a.rate_wait_s) if cat == "service" else None,
            "ttft_ms": _ms(percentile(a.ttfts, 0.5)) if a.ttfts else None,
        })
    return out


def queue_rows(rec: Recorder) -> dict[str, Any]:
    """Queue waits for a slot (rule 45) per service and per stream (see
    :meth:`Recorder.queue_rows`)."""
    services = []
    for name, waits in sorted(rec.waits.items()):
        d = sorted(waits)
        services.append({"service": name, "waits": len(d),
                         "queued_ms": _ms(sum(d)),
                         "p50_ms": _ms(percentile(d, 0.5)),
                         "p95_ms": _ms(percentile(d, 0.95)),
                         "max_ms": _ms(d[-1])})
    flows = sorted(rec.flow_waits.items(), key=lambda kv: (-kv[1][1], kv[0]))
    totals = sorted(w[1] for _, w in flows)
    streams: dict[str, Any] = {
        "streams": len(flows),
        "mean_ms": _ms(sum(totals) / len(totals)) if totals else 0.0,
        "p95_ms": _ms(percentile(totals, 0.95)),
        "max_ms": _ms(totals[-1]) if totals else 0.0,
        "longest": [{"stream": k, "waits": int(w[0]), "queued_ms": _ms(w[1])}
                    for k, w in flows[:5]],
    }
    return {"services": services, "streams": streams}


# ---------------------------------------------------------------- text

def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def render(rec: Recorder, stream: IO[str]) -> None:
    """Rich tables on ``stream`` (stderr): one row per service, one per handler, then
    the run's totals, its critical path and the batch streams."""
    from rich.console import Console
    from rich.table import Table

    from .cost import fmt_usd

    con = Console(file=stream, width=200)
    rws = rows(rec)
    priced = rec.meter is not None and rec.meter.pricing.any

    def cost(r: dict[str, Any]) -> str:
        if not (priced or r["tokens_in"] or r["tokens_out"]):
            return ""
        return fmt_usd(r["cost_usd"])

    for kind, title in (("service", "services"), ("handler", "handlers")):
        sel = [r for r in rws if r["kind"] == kind]
        if not sel:
            continue
        table = Table(title=f"cxpar stats: {title}", title_justify="left")
        # issue 20's columns only when a call waited for rate room or streamed
        rate = any(r["rate_wait_ms"] for r in sel)
        ttft = any(r["ttft_ms"] is not None for r in sel)
        cols = ["name", "calls" if kind == "service" else "runs", "failures", "retries",
                "p50 ms", "p95 ms"] + (["queued ms"] if kind == "service" else []) + \
            (["rate_wait_ms"] if rate else []) + (["ttft_ms"] if ttft else []) + \
            ["tokens in", "tokens out", "cost", "critical ms"] + \
            (["speedup"] if kind == "service" else [])
        for col in cols:
            table.add_column(col, justify="left" if col == "name" else "right",
                             no_wrap=col == "name")
        for r in sel:
            top = r["name"] == "(top level)"
            cells = [r["name"], "" if top else str(r["count"]),
                     "" if top else str(r["failures"]), "" if top else str(r["retries"]),
                     "" if top else _num(r["p50_ms"]), "" if top else _num(r["p95_ms"])]
            if kind == "service":
                cells.append(_num(r["queued_ms"]))
            if rate:
                cells.append(_num(r["rate_wait_ms"]))
            if ttft:
                cells.append(_num(r["ttft_ms"]))
            cells += [str(r["tokens_in"]), str(r["tokens_out"]), cost(r),
                      _num(r["critical_ms"])]
            if kind == "service":
                cells.append("" if r["speedup"] is None else f"{r['speedup']:g}x")
            table.add_row(*cells)
        con.print(table)
    doc = build_stats(rec)

    def say(text: str) -> None:
        con.print(text, markup=False, highlight=False)

    t = doc["total"]
    say(f"total: {t['calls']} calls, {t['tokens_in']} tokens in, {t['tokens_out']} "
        f"tokens out, cost {fmt_usd(t['cost_usd'])}, wall {_num(t['wall_ms'])} ms"
        + ("" if priced else "  (no prices: add [pricing.MODEL] to cxpar.toml or use "
           "--price IN,OUT)"))
    transport = {name: a.transport for (cat, name), a in sorted(rec.aggs.items())
                 if cat == "service" and a.transport}
    if transport:
        say("transport retries (requests the provider sent again): " + ", ".join(
            f"{name} {n}" for name, n in transport.items()) + " (counted in retries)")
    cp = doc["critical_path"]
    if cp.get("steps"):
        steps = cp["steps"]
        shown = " -> ".join(f"{s['name']} {s['ms']:g}" for s in steps[:12])
        more = f" -> ... ({len(steps) - 12} more)" if len(steps) > 12 else ""
        say(f"critical path: {cp['ms']:g} ms, {cp['calls']} calls, {cp['tokens_in']} "
            f"tokens in, {cp['tokens_out']} tokens out, cost {fmt_usd(cp['cost_usd'])}: "
            f"{shown}{more}")
    if rec.waits:
        q = queue_rows(rec)
        table = Table(title="queue waits for a slot (--max-concurrency / adaptive limit)",
                      title_justify="left")
        for col in ("service", "waits", "queued ms", "p50 ms", "p95 ms", "max ms"):
            table.add_column(col, justify="left" if col == "service" else "right")
        for r in q["services"]:
            table.add_row(r["service"], str(r["waits"]), f"{r['queued_ms']:g}",
                          f"{r['p50_ms']:g}", f"{r['p95_ms']:g}", f"{r['max_ms']:g}")
        con.print(table)
        qs = q["streams"]
        longest = ", ".join(f"{x['stream']} {x['queued_ms']:g} ms" for x in qs["longest"])
        say(f"queue wait per stream: {qs['streams']} waited, mean {qs['mean_ms']:g} ms, "
            f"p95 {qs['p95_ms']:g} ms, max {qs['max_ms']:g} ms; longest: {longest}")
    st = doc["streams"]
    if st is not None:
        line = (f"streams: {st['count']} ({st['failures']} failed), ms p50 "
                f"{st['p50_ms']:g} p95 {st['p95_ms']:g} max {st['max_ms']:g}")
        if "tokens_in" in st:
            ti, to = st["tokens_in"], st["tokens_out"]
            line += (f"; tokens in p50 {ti['p50']} p95 {ti['p95']} max {ti['max']}, "
                     f"out p50 {to['p50']} p95 {to['p95']} max {to['max']}")
            if st.get("cost_usd") is not None:
                c = st["cost_usd"]
                line += (f"; cost p50 {fmt_usd(c['p50'])} p95 {fmt_usd(c['p95'])} "
                         f"max {fmt_usd(c['max'])}")
        say(line)
