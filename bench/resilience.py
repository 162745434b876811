"""Resilience benchmark (issue 9): ``python bench/resilience.py [--quick] [--append]``.

On the virtual clock, against the sim's capacity model (``think``: 800 ms, capacity 50
concurrent calls; past it latency grows in proportion and 429s appear):

- throughput (successful calls/s) and p95 latency (queueing included) for fixed global
  limits and for the adaptive limit starting below (5) and above (400) the capacity,
  measured after convergence (from 10 s to 90 % of the run);
- recovery: a 5 s outage of an endpoint answering in 50 ms under 100 calls/s, breaker
  cool-down 2 s: time from the end of the outage until a 100 ms window reaches 90 % of
  the pre-outage throughput.

``--append`` replaces the "Resilience" section of docs/performance.md with the table.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cxpar.runtime import run_program  # noqa: E402
from cxpar.runtime.adaptive import LimitsConfig  # noqa: E402
from cxpar.runtime.breaker import BreakerConfig  # noqa: E402
from cxpar.runtime.providers.base import ProviderError  # noqa: E402
from cxpar.runtime.providers.sim import SimProvider  # noqa: E402
from cxpar.runtime.resilience import Resilience  # noqa: E402
from cxpar.runtime.settings import RunSettings  # noqa: E402

CAP = 50


def load(*, calls: int, fixed: int | None = None, initial: int = 10) -> dict[str, Any]:
    done: list[tuple[float, bool, float]] = []
    provider = SimProvider(0, latency_ms={"think": 800}, capacity={"think": CAP})
    res = Resilience(BreakerConfig(enabled=False),
                     LimitsConfig(adaptive=fixed is None, initial=initial))
    left = [calls]

    async def worker(rt: Any, _s: Any, _e: Any) -> None:
        while left[0] > 0:
            left[0] -= 1
            t0 = rt.loop.time()
            p = await rt.service("think", -1, {"prompt": "x"})
            t1 = rt.loop.time()
            done.append((t1, "_errors" not in p, t1 - t0))

    async def main(rt: Any) -> None:
        rt.on("work", worker)
        for _ in range(400):
            rt.emit("work", {})

    def setup(rt: Any) -> None:
        rt.resilience = res
        rt._breakers = res.breakers

    t = time.perf_counter()
    run_program(main, RunSettings(clock="virtual", max_concurrency=fixed, timeout_ms=None),
                provider=provider, stdout=io.StringIO(), stderr=io.StringIO(), setup=setup)
    wall = time.perf_counter() - t
    end = max(t for t, _, _ in done)
    t0, t1 = 10.0, end * 0.9
    ok = sorted(lat for t, good, lat in done if good and t0 <= t < t1)
    n_err = sum(1 for t, good, _ in done if not good and t0 <= t < t1)
    lim = res.limiters.get("think")
    final = lim.limit if lim is not None else fixed
    return {"tput": len(ok) / (t1 - t0), "p95": ok[int(0.95 * (len(ok) - 1))] * 1000,
            "err": n_err / max(1, n_err + len(ok)), "limit": final, "wall": wall}


class Outage:
    def __init__(self, start: float, end: float) -> None:
        self.start, self.end = start, end

    async def call(self, service: str, request: Any, ctx: Any) -> Any:
        if self.start <= ctx.runtime.now() < self.end:
            raise ProviderError("HTTP 503")
        await asyncio.sleep(0.05)
        return "ok"


def recovery(cooldown_ms: float = 2000) -> float:
    ends: list[tuple[float, bool]] = []
    start, end = 3000.0, 8000.0

    async def main(rt: Any) -> None:
        async def one() -> None:
            p = await rt.service("think", -1, {"prompt": "x"}, timeout=1000.0)
            ends.append((rt.now(), "_errors" not in p))

        tasks = []
        for _ in range(1600):
            tasks.append(asyncio.ensure_future(one()))
            await asyncio.sleep(0.01)
        await asyncio.gather(*tasks)

    res = Resilience.from_settings({"cooldown_ms": cooldown_ms})

    def setup(rt: Any) -> None:
        rt.resilience = res
        rt._breakers = res.breakers

    run_program(main, RunSettings(clock="virtual"), provider=Outage(start, end), setup=setup,
                stdout=io.StringIO(), stderr=io.StringIO())

    def rate(t0: float, t1: float) -> float:
        return sum(1 for t, ok in ends if ok and t0 <= t < t1) / (t1 - t0)

    base = rate(1000, start)
    t = end
    while t < end + 20_000:
        if rate(t, t + 100) >= 0.9 * base:
            return t - end
        t += 10
    return float("inf")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--append", action="store_true",
                    help="write the table into docs/performance.md")
    ns = ap.parse_args()
    calls = 1500 if ns.quick else 4000
    rows = []
    for fixed in (20, 40, 50, 60, 100):
        rows.append((f"fixed {fixed}", load(calls=calls, fixed=fixed)))
    best = max(r["tput"] for _, r in rows)
    for init in (5, 400):
        rows.append((f"adaptive (gradient), from {init}", load(calls=calls, initial=init)))
    lines = ["| limit | successful calls/s | vs best fixed | p95 ms | 429 share | "
             "final limit |", "|---|---|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['tput']:.1f} | {r['tput'] / best:.2f}× | "
                     f"{r['p95']:.0f} | {r['err'] * 100:.1f} % | {r['limit']} |")
    rec = recovery()
    lines.append("")
    lines.append(f"Recovery after a 5 s outage (breaker cool-down 2000 ms, 50 ms calls at "
                 f"100/s): throughput back to ≥ 90 % **{rec:.0f} ms** after the outage "
                 f"ended (target: cool-down + 100 ms = 2100 ms).")
    table = "\n".join(lines)
    print(table)
    if ns.append:
        doc = ROOT / "docs" / "performance.md"
        text = doc.read_text(encoding="utf-8")
        head = "## Resilience"
        section = (f"{head}\n\n`python bench/resilience.py` (virtual clock; sim `think` "
                   f"800 ms with `capacity = 50`; {calls} calls from 400 closed-loop "
                   "workers; throughput and p95 measured from 10 s to 90 % of the run, "
                   "p95 includes queueing for a slot).\n\n" + table + "\n")
        if head in text:
            before, _, rest = text.partition(head)
            nxt = rest.find("\n## ")
            text = before + section + (rest[nxt:] if nxt >= 0 else "")
        else:
            text = text.rstrip("\n") + "\n\n" + section
        doc.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
