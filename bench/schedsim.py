"""Discrete-event simulation of call-ordering policies under a global limit (issue 17).

``python -m bench.schedsim [--markdown]`` models the candidates *before* the runtime
builds one: streams (programs) made of rounds; each round runs some parallel *paths*
(the provider call, and branches that each make a chain of calls) and ends when all of
them end (the join); at most ``limit`` calls run at once; when a slot frees, the
policy picks the next waiting call. Everything is deterministic (seeded shapes, ties
by enqueue order), so the numbers are exact, not measured.

Policies (keys: smaller goes first; ``level`` = multi-level queue of a stream's
attained service, ``Q`` its first quantum, levels doubling):

- ``fifo``: enqueue order (today's behaviour);
- ``las``: least attained service per stream (Autellix's warning: with streams that
  start together this is processor sharing);
- ``stream-fcfs``: streams in start order (one level);
- ``plas(Q)``: Autellix's PLAS: level, then stream start order;
- ``plas-cp(Q)``: PLAS, then within a stream the call with the longest remaining
  critical path (b-level of its round);
- ``cp``: longest remaining critical path first (list scheduling, no program order);
- ``plas-cp(auto)``: the runtime's choice: PLAS whose first quantum is the larger of 16
  mean calls and 4 mean finished streams (so only streams far longer than the usual one
  move down), then the critical path;
- ``mas``: most attained service first (the Gittins order for these length
  distributions, which have increasing hazard rates);
- ``srpt*``: shortest remaining stream work first — an oracle (it knows how many rounds
  each stream will run), only as a reference.

Aging is modelled as in :class:`cxpar.runtime.limits.Limiter`: a call's key is
prefixed with ``floor(enqueue_time / aging)``.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Path_ = list[float]            # one path: latencies (ms) of calls made one after another
Round = list[Path_]            # parallel paths; the round ends when all end


@dataclass
class Shape:
    """A workload: streams of rounds, a limit, and how many streams may run at once."""

    name: str
    description: str
    streams: list[list[Round]]
    limit: int
    in_flight: int = 0          # 0 = every stream starts at 0; else a batch --streams N

    @property
    def work(self) -> float:
        return sum(c for s in self.streams for r in s for p in r for c in p)

    def critical(self, s: list[Round]) -> float:
        return sum(max(sum(p) for p in r) for r in s)

    def lower_bound(self) -> float:
        """max(total model time / limit, longest stream critical path)."""
        return max(self.work / self.limit, max(self.critical(s) for s in self.streams))


@dataclass(eq=False)
class _Stream:
    idx: int
    rounds: list[Round]
    start: float = -1.0
    end: float = -1.0
    seq: int = 0
    attained: float = 0.0
    round: int = 0
    pending: int = 0
    remaining: float = 0.0      # oracle: model time still to run


@dataclass(eq=False)
class _Call:
    stream: _Stream
    latency: float
    rest: list[float]            # the calls after this one on its path
    crit: float                  # remaining critical path of its round from this call
    seq: int
    t_enq: float


@dataclass
class Result:
    policy: str
    completions: list[float] = field(default_factory=list)
    makespan: float = 0.0
    by_stream: dict[int, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return sum(self.completions) / len(self.completions)

    def pct(self, p: float) -> float:
        xs = sorted(self.completions)
        return xs[min(len(xs) - 1, max(0, math.ceil(p * len(xs)) - 1))]


Key = Callable[[_Call, float], tuple[float, ...]]


def level(attained: float, quantum: float) -> int:
    if quantum <= 0 or attained < quantum:
        return 0
    return int(math.log2(attained / quantum)) + 1


#: Attained service of the streams finished so far (for the adaptive quantum).
_DONE: list[float] = []


def auto_quantum(mean_call: float) -> float:
    """The runtime's quantum: max(16 mean calls, 4 × mean finished stream's service)."""
    q = 16 * mean_call
    if _DONE:
        q = max(q, 4 * sum(_DONE) / len(_DONE))
    return q


def plas(quantum: float, *, cp: bool) -> Key:
    """PLAS with a fixed first quantum; ``cp``: then the longest critical path."""
    if cp:
        return lambda c, now: (level(c.stream.attained, quantum), c.stream.seq, -c.crit,
                               c.seq)
    return lambda c, now: (level(c.stream.attained, quantum), c.stream.seq, c.seq)


def policies(mean_call: float) -> dict[str, Key]:
    """The candidate orders; quanta are given in multiples of the mean call latency."""
    out: dict[str, Key] = {
        "fifo": lambda c, now: (c.seq,),
        "las": lambda c, now: (c.stream.attained, c.seq),
        "cp": lambda c, now: (-c.crit, c.seq),
        "stream-fcfs": lambda c, now: (c.stream.seq, c.seq),
        "stream-fcfs-cp": lambda c, now: (c.stream.seq, -c.crit, c.seq),
        "mas": lambda c, now: (-c.stream.attained, c.stream.seq, c.seq),
    }
    for mult in (1, 4, 16):
        out[f"plas({mult}x)"] = plas(mult * mean_call, cp=False)
        out[f"plas-cp({mult}x)"] = plas(mult * mean_call, cp=True)
    out["plas-cp(auto)"] = lambda c, now: (
        level(c.stream.attained, auto_quantum(mean_call)), c.stream.seq, -c.crit, c.seq)
    out["srpt*"] = lambda c, now: (c.stream.remaining, c.stream.seq, -c.crit, c.seq)
    return out


def aged(key: Key, aging_ms: float) -> Key:
    """``key`` behind a windowed aging prefix (as the runtime's Limiter)."""
    if aging_ms <= 0:
        return key
    return lambda c, now: (math.floor(c.t_enq / aging_ms), *key(c, now))


def simulate(shape: Shape, key: Key, name: str = "") -> Result:
    """Run ``shape`` under the order ``key``; stream completion = end − start."""
    streams = [_Stream(i, s, remaining=sum(c for r in s for p in r for c in p))
               for i, s in enumerate(shape.streams)]
    events: list[tuple[float, int, Callable[[], None]]] = []
    waiting: list[_Call] = []
    free = [shape.limit]
    seq = [0]
    now = [0.0]
    started = [0]
    res = Result(name)
    _DONE.clear()

    def at(t: float, fn: Callable[[], None]) -> None:
        seq[0] += 1
        heapq.heappush(events, (t, seq[0], fn))

    def enqueue(st: _Stream, path: list[float], crit: float) -> None:
        seq[0] += 1
        waiting.append(_Call(st, path[0], path[1:], crit, seq[0], now[0]))

    def start_round(st: _Stream) -> None:
        r = st.rounds[st.round]
        st.pending = len(r)
        for path in r:  # provider call first, then branches in key order (rule 11)
            enqueue(st, path, sum(path))

    def start_stream(st: _Stream) -> None:
        seq[0] += 1
        st.seq = seq[0]
        st.start = now[0]
        started[0] += 1
        start_round(st)

    def finish(c: _Call) -> None:
        st = c.stream
        st.attained += c.latency
        st.remaining -= c.latency
        free[0] += 1
        if c.rest:
            enqueue(st, c.rest, sum(c.rest))
        else:
            st.pending -= 1
            if st.pending == 0:
                st.round += 1
                if st.round < len(st.rounds):
                    start_round(st)
                else:
                    st.end = now[0]
                    res.completions.append(st.end - st.start)
                    res.by_stream[st.idx] = st.end - st.start
                    _DONE.append(st.attained)
                    if started[0] < len(streams):
                        start_stream(streams[started[0]])

    def dispatch() -> None:
        while free[0] > 0 and waiting:
            t = now[0]
            best = min(range(len(waiting)), key=lambda i: key(waiting[i], t))
            c = waiting.pop(best)
            free[0] -= 1
            at(now[0] + c.latency, lambda c=c: finish(c))

    first = shape.in_flight or len(streams)
    for st in streams[:first]:
        start_stream(st)
    dispatch()
    while events:
        t, _, fn = heapq.heappop(events)
        now[0] = t
        fn()
        while events and events[0][0] == t:
            heapq.heappop(events)[2]()
        dispatch()
    res.makespan = now[0]
    assert len(res.completions) == len(streams), "a stream never finished"
    return res


# ---------------------------------------------------------------- shapes

def _rounds(rng: random.Random, lo: int, hi: int, make: Callable[[], Round]) -> list[Round]:
    return [make() for _ in range(rng.randint(lo, hi))]


def shapes(scale: int = 1) -> list[Shape]:
    """The issue's target shape and three more (different services, widths, limits)."""
    rng = random.Random(17)
    n = 100 * scale
    target = Shape(
        "target", "100 streams × 1–4 rounds of think (800 ms) ∥ 2 branches × infer "
                  "(300 ms); limit 8; all start together",
        [_rounds(rng, 1, 4, lambda: [[800.0], [300.0], [300.0]]) for _ in range(n)], 8)
    wide = Shape(
        "wide", "100 streams × 1–3 rounds of adapt (400) ∥ 4 branches × (infer 300 → "
                "learn 200); limit 16",
        [_rounds(rng, 1, 3, lambda: [[400.0]] + [[300.0, 200.0]] * 4) for _ in range(n)],
        16)
    arrivals = Shape(
        "arrivals", "400 records, --streams 100 (a stream starts when one ends) × 1–6 "
                    "rounds of think (800) ∥ infer (300); limit 4",
        [_rounds(rng, 1, 6, lambda: [[800.0], [300.0]]) for _ in range(4 * n)], 4, 100)
    heavy = Shape(
        "heavy-tail", "100 streams, rounds 1–20 (geometric, mean ≈ 3) of think (800) ∥ "
                      "infer (300) → is (300); limit 8",
        [[[[800.0], [300.0, 300.0]]] * min(20, 1 + int(rng.expovariate(0.5)))
         for _ in range(n)], 8)
    single = Shape(
        "single-program", "one program: think (800) ∥ 60 branches: 56 make one infer call "
                          "(300), the last 4 a chain of 8; limit 8",
        [[[[800.0]] + [[300.0]] * 56 + [[300.0] * 8] * 4]], 8)
    whale = Shape(
        "whale", "the target's 100 streams, but the first one also fans out to 400 infer "
                 "calls in its first round; limit 8",
        [[[[800.0]] + [[300.0]] * 400] + target.streams[0][1:]] + target.streams[1:], 8)
    return [target, wide, arrivals, heavy, whale, single]


def mean_call(shape: Shape) -> float:
    calls = [c for s in shape.streams for r in s for p in r for c in p]
    return sum(calls) / len(calls)


def evaluate(shape: Shape, names: Sequence[str] | None = None,
             aging_ms: float = 0.0) -> dict[str, Result]:
    pol = policies(mean_call(shape))
    out = {}
    for name, key in pol.items():
        if names and name not in names:
            continue
        out[name] = simulate(shape, aged(key, aging_ms), name)
    return out


def table(shape: Shape, results: dict[str, Result]) -> list[str]:
    base = results["fifo"]
    lb = shape.lower_bound()
    rows = [f"**{shape.name}** — {shape.description}. Lower bound on the makespan "
            f"{lb / 1000:.1f} s.", "",
            "| policy | mean completion s | ×fifo | p99 s | ×fifo | makespan s | ×fifo "
            "| makespan ÷ bound |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r.mean / 1000:.1f} | {r.mean / base.mean:.2f} | "
                    f"{r.pct(0.99) / 1000:.1f} | {r.pct(0.99) / base.pct(0.99):.2f} | "
                    f"{r.makespan / 1000:.1f} | {r.makespan / base.makespan:.3f} | "
                    f"{r.makespan / lb:.3f} |")
    return rows


def aging_table(shape: Shape, policy: str, windows: Sequence[float]) -> list[str]:
    rows = [f"Aging window vs gain, `{policy}` on **{shape.name}**:", "",
            "| aging window | mean ×fifo | p99 ×fifo | max wait of one call s |",
            "|---|---|---|---|"]
    fifo = evaluate(shape, ["fifo"])["fifo"]
    for w in windows:
        r = evaluate(shape, [policy], aging_ms=w)[policy]
        rows.append(f"| {'off' if w <= 0 else f'{w / 1000:g} s'} | "
                    f"{r.mean / fifo.mean:.2f} | {r.pct(0.99) / fifo.pct(0.99):.2f} | "
                    f"{max_wait(shape, policy, w) / 1000:.1f} |")
    return rows


def max_wait(shape: Shape, policy: str, aging_ms: float) -> float:
    """Longest time one call waited for a slot under ``policy`` with aging."""
    worst = [0.0]
    key = aged(policies(mean_call(shape))[policy], aging_ms)

    def spy(c: _Call, now: float) -> tuple[float, ...]:
        worst[0] = max(worst[0], now - c.t_enq)
        return key(c, now)

    simulate(shape, spy)
    return worst[0]


def _target(shape: str, target: str, met: bool) -> dict[str, Any]:
    """The issue's targets apply to the target shape; the others report ratios only."""
    return {"target": target, "met": met} if shape == "target" else {}


def run(mode: str) -> list[Any]:
    """Rows for ``python -m bench``: the program-order candidate vs fifo per shape."""
    from .core import Row

    rows = []
    scale_shapes = shapes()
    if mode == "tiny":
        scale_shapes = [Shape(s.name, s.description, s.streams[:20], s.limit,
                              min(s.in_flight, 10)) for s in scale_shapes[:2]]
    for shape in scale_shapes:
        res = evaluate(shape, ["fifo", WINNER])
        f, p = res["fifo"], res[WINNER]
        rows.append(Row(f"schedsim.{shape.name}.mean_completion",
                        {"policy": WINNER, "limit": shape.limit}, p.mean / 1000, "s",
                        f.mean / 1000, p.mean / f.mean, reps=1, baseline_name="fifo",
                        **_target(shape.name, "ratio <= 0.8", p.mean / f.mean <= 0.8)))
        rows.append(Row(f"schedsim.{shape.name}.makespan",
                        {"policy": WINNER, "limit": shape.limit}, p.makespan / 1000, "s",
                        f.makespan / 1000, p.makespan / f.makespan, reps=1,
                        baseline_name="fifo",
                        **_target(shape.name, "ratio <= 1.05",
                                  p.makespan / f.makespan <= 1.05)))
    return rows


#: The policy the runtime builds (see docs/performance.md, "Scheduling").
WINNER = "plas-cp(auto)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.schedsim", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated policies")
    ns = ap.parse_args(argv)
    only = [x for x in ns.only.split(",") if x] or None
    lines: list[str] = []
    all_shapes = shapes()
    for shape in all_shapes:
        lines += table(shape, evaluate(shape, only)) + [""]
    for shape in (all_shapes[0], all_shapes[2]):
        lines += aging_table(shape, WINNER, [0, 120_000, 60_000, 30_000, 10_000]) + [""]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
