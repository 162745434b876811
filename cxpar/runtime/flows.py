"""Flows: the "programs" whose order ``--schedule program`` decides (SPEC §6.2, rule 19).

A :class:`Flow` is one unit of user-visible work: a batch stream, or — in a single run —
the top level and each handler the top level or ``system.start`` starts by ``emit``.
Everything a flow starts (service calls, branches, items, handlers it emits) runs in it:
the current flow travels in the :data:`FLOW` context variable, which asyncio copies
into every task at creation. A flow counts its *attained service* (the provider time
of its finished calls) and the time its calls spent queued under a limit.
"""

from __future__ import annotations

import contextvars
import itertools
import math

__all__ = ["Flow", "FLOW", "new_flow", "level_of"]

_seq = itertools.count()


class Flow:
    """One program instance: its start order, attained service and queue time."""

    __slots__ = ("seq", "label", "attained", "queued", "waits", "root")

    def __init__(self, label: str, *, root: bool = False) -> None:
        #: Start order over the whole process (FCFS within a level).
        self.seq = next(_seq)
        self.label = label
        #: Seconds of provider service of this flow's finished calls.
        self.attained = 0.0
        #: Seconds this flow's calls spent waiting for a slot, and how many waited.
        self.queued = 0.0
        self.waits = 0
        #: The top level of a single run: the handlers it emits start flows of their own.
        self.root = root

    def __repr__(self) -> str:
        return f"Flow({self.label!r}, seq={self.seq}, attained={self.attained:.3f})"


#: The flow of the running task (None outside any flow: everything is one program).
FLOW: contextvars.ContextVar[Flow | None] = contextvars.ContextVar("cx_flow", default=None)


def new_flow(label: str, *, root: bool = False) -> Flow:
    """A flow that starts now (later flows come after it within a level)."""
    return Flow(label, root=root)


def level_of(attained_s: float, quantum_s: float) -> int:
    """Multi-level queue of a flow with ``attained_s`` of service: 0 below one quantum,
    then one level per doubling — level k ends at ``quantum_s·2^k`` (``quantum_s`` <= 0:
    a single level)."""
    if quantum_s <= 0 or attained_s < quantum_s:
        return 0
    return int(math.log2(attained_s / quantum_s)) + 1
