"""Fan-out overhead: one handler-parameter call whose event has N subscribers that each
sleep 50 ms (real clock), vs ``asyncio.gather`` of N coroutines that sleep 50 ms.

Three CX-side variants, all through the same ``rt.service`` call the python backend
generates for ``await { durationMs: 0, k: bench.branch }``:

* ``fanout.cx``: N subscribers written in CX (``object Worker { on bench.branch … }``,
  N instances) whose body is ``await { durationMs: 50 }; return 1;`` — what a user
  writes. Each branch's sleep is itself a full service call (a ``_Join``, a provider
  task, an ``awaiting.complete`` emit), so this is fan-out + N nested service calls.
* ``fanout.machinery``: N Python subscribers that ``await asyncio.sleep(0.05)`` —
  isolates the fan-out/join machinery (task per branch, event copy, join, payload).

Per-branch overhead = (wall − 50 ms) / N.
"""

from __future__ import annotations

import asyncio
import gc
import operator
import time
from typing import Annotated, Any, TypedDict

from .core import Row, child, compare, compile_cx, run_cx, skipped

SLEEP_S = 0.05

CX_PROGRAM = """
object Worker {
    on bench.branch (event) {
        await { durationMs: 50 };
        return 1;
    }
}

var i = 0;
while (i < N) {
    new Worker();
    i += 1;
}
"""

SIZES = {"tiny": [10, 100], "quick": [10, 100, 1000],
         "full": [10, 100, 1000, 10_000, 100_000]}


def _reps(n: int, mode: str) -> int:
    if mode == "tiny":
        return 1
    if n <= 100:
        return 15 if mode == "full" else 9
    if n <= 1000:
        return 9 if mode == "full" else 5
    if n <= 10_000:
        return 5
    return 3


async def _py_branch(rt: Any, self: Any, event: Any) -> float:
    await asyncio.sleep(SLEEP_S)
    return 1.0


async def _plain(i: int) -> float:
    await asyncio.sleep(SLEEP_S)
    return 1.0


def measure(n: int, reps: int, kinds: list[str]) -> dict[str, list[float]]:
    """(child) Wall seconds per repetition for each kind, interleaved on one loop."""
    compiled = compile_cx(CX_PROGRAM.replace("N", str(n)) if "cx" in kinds
                          else CX_PROGRAM.replace("N", "0"))

    async def body(rt: Any) -> dict[str, list[float]]:
        for _ in range(n):
            rt.on("bench.py", _py_branch)
        out: dict[str, list[float]] = {k: [] for k in kinds}
        calls = {
            "cx": lambda: rt.service("await", -1, {"durationMs": 0.0},
                                     [("k", "bench.branch", None)]),
            "machinery": lambda: rt.service("await", -1, {"durationMs": 0.0},
                                            [("k", "bench.py", None)]),
            "gather": lambda: asyncio.gather(*[_plain(i) for i in range(n)]),
        }
        for r in range(reps + 1):  # the first round warms up and is discarded
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for kind in order:
                gc.collect()
                t0 = time.perf_counter()
                res = await calls[kind]()
                dt = time.perf_counter() - t0
                if kind != "gather":
                    if res.get("_errors") or (n > 1 and len(res["k"]) != n):
                        raise RuntimeError(f"fan-out failed: {res.get('_errors')}")
                elif len(res) != n:
                    raise RuntimeError("gather lost results")
                if r:
                    out[kind].append(dt)
        return out

    return run_cx(compiled, body, clock="real")


class State(TypedDict):
    """LangGraph's state for the fan-out (module level: LangGraph resolves the
    annotations with ``get_type_hints``, which needs ``Annotated`` in module globals)."""

    n: int
    results: Annotated[list, operator.add]


def measure_langgraph(n: int, reps: int) -> list[float]:
    """(child) LangGraph: a node that ``Send``s to N branch nodes that sleep 50 ms."""
    from langgraph.graph import END, START, StateGraph
    try:
        from langgraph.types import Send
    except ImportError:  # older langgraph
        from langgraph.constants import Send  # type: ignore[no-redef]

    async def fan(state: State) -> dict:
        return {}

    def route(state: State) -> list:
        return [Send("branch", {"n": i, "results": []}) for i in range(state["n"])]

    async def branch(state: State) -> dict:
        await asyncio.sleep(SLEEP_S)
        return {"results": [1]}

    g = StateGraph(State)
    g.add_node("fan", fan)
    g.add_node("branch", branch)
    g.add_edge(START, "fan")
    g.add_conditional_edges("fan", route, ["branch"])
    g.add_edge("branch", END)
    app = g.compile()

    async def go() -> list[float]:
        times = []
        for r in range(reps + 1):
            gc.collect()
            t0 = time.perf_counter()
            out = await app.ainvoke({"n": n, "results": []},
                                    {"recursion_limit": 10 ** 9, "max_concurrency": None})
            dt = time.perf_counter() - t0
            if len(out["results"]) != n:
                raise RuntimeError("langgraph lost results")
            if r:
                times.append(dt)
        return times

    return asyncio.run(go())


def _per_branch_us(walls: list[float], n: int) -> list[float]:
    return [(w - SLEEP_S) / n * 1e6 for w in walls]


def _langgraph_available() -> bool:
    import importlib.util
    return importlib.util.find_spec("langgraph") is not None


def run(mode: str) -> list[Row]:
    rows: list[Row] = []
    for n in SIZES[mode]:
        reps = _reps(n, mode)
        res = child("fanout", "measure", n=n, reps=reps, kinds=["cx", "machinery", "gather"])
        base = _per_branch_us(res["gather"], n)
        for kind, label in (("cx", "fanout.cx"), ("machinery", "fanout.machinery")):
            rows.append(compare(
                label, {"N": n}, _per_branch_us(res[kind], n), base, "µs/branch",
                baseline_name="asyncio.gather", target="ratio ≤ 2",
                check=lambda x: x <= 2.0,
                wall_ms=round(min(res[kind]) * 1000, 1)))
    lg_n = 10_000 if mode == "full" else (1000 if mode == "quick" else 10)
    if not _langgraph_available():
        rows.append(skipped("fanout.langgraph", {"N": lg_n},
                            "langgraph not installed (pip install 'cxpar[bench]')",
                            target="cx ≥ 30× faster"))
        return rows
    try:
        lg = child("fanout", "measure_langgraph", n=lg_n, reps=3 if mode != "tiny" else 1)
        cx = child("fanout", "measure", n=lg_n, reps=3 if mode != "tiny" else 1,
                   kinds=["cx"])["cx"]
    except Exception as exc:  # noqa: BLE001 - optional comparison
        rows.append(skipped("fanout.langgraph", {"N": lg_n}, f"langgraph failed: {exc}"))
        return rows
    # value = LangGraph's overhead, baseline = cxpar's: ratio = how many times faster cx is
    rows.append(compare("fanout.langgraph_vs_cx", {"N": lg_n}, _per_branch_us(lg, lg_n),
                        _per_branch_us(cx, lg_n), "µs/branch", baseline_name="fanout.cx",
                        target="ratio ≥ 30", check=lambda x: x >= 30.0))
    return rows
