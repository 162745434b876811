"""Shared by scheduling tests (and the limiter tests in tests/resilience)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from cxpar.runtime.clock import new_loop
from cxpar.runtime.flows import Flow
from cxpar.runtime.schedule import Limiter

#: A batch program: rounds of `think` fanning out to two branches that each call `infer`.
ROUNDS = """\
on input.record (e) {
    var i = 0;
    while (i < e.rounds) {
        var r = think { prompt: "q" + i, a: side.a, b: side.b };
        i += 1;
    }
    emit output.record { id: e.id, t: now() };
}
on side.a (e) { var x = infer { prompt: "a " + e.prompt }; return x.result; }
on side.b (e) { var x = infer { prompt: "b " + e.prompt }; return x.result; }
"""


Req = tuple[float, str, Flow | None, float, Sequence[tuple[str, int, float]] | None]


def order(lim: Limiter, reqs: Sequence[Req], *, prime: float = 0.0) -> list[str]:
    """Occupy every slot, queue ``(at_s, name, flow, priority, path)`` requests, then
    free the slots; the order the queued requests got theirs. ``prime``: first report
    one finished call of that many seconds (calibrates the quantum)."""
    got: list[str] = []

    async def waiter(name: str, flow: Flow | None, prio: float, path: Any) -> None:
        await lim.acquire(prio, flow, path)
        got.append(name)
        await asyncio.sleep(1)
        lim.release()

    async def go() -> None:
        loop = asyncio.get_running_loop()
        if prime:
            await lim.acquire()
            lim.release("infer", prime)
        for _ in range(lim.limit):
            await lim.acquire()
        tasks = []
        for at, name, flow, prio, path in reqs:
            await asyncio.sleep(max(0.0, at - loop.time()))
            tasks.append(asyncio.ensure_future(waiter(name, flow, prio, path)))
            await asyncio.sleep(0)
        for _ in range(lim.limit):
            lim.release()
        await asyncio.gather(*tasks)

    loop = new_loop("virtual")
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()
    return got
