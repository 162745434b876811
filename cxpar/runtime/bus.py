"""The event bus: subscriptions per event name, ``any`` wildcard parts (rules 1 and 4)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Protocol

__all__ = ["Bus", "Handler", "Router", "Sub"]

#: A handler: ``async def h(rt, self_instance_or_None, event) -> value``.
Handler = Callable[[Any, Any, Any], Coroutine[Any, Any, Any]]

#: A subscription: (handler, instance or None).
Sub = tuple[Handler, Any]


class Router(Protocol):
    """What the runtime needs from an event router (``Runtime.use_router``).

    :class:`Bus` is the python implementation; the llvm backend passes in a bus whose
    ``subscribers`` is a JIT'd table lookup (``cxpar.codegen.llvm.bridge``). Any
    implementation must route exactly like :class:`Bus` (rules 1 and 4).
    """

    def subscribe(self, pattern: str, fn: Handler, inst: Any = None) -> None: ...
    def subscribers(self, name: str) -> tuple[Sub, ...]: ...
    def has_subscribers(self, name: str) -> bool: ...
    def names(self) -> list[str]: ...


class Bus:
    """Subscriber lists resolved per emitted name, in global subscription order."""

    __slots__ = ("_exact", "_wild", "_cache", "_seq")

    def __init__(self) -> None:
        self._exact: dict[str, list[tuple[int, Sub]]] = {}
        self._wild: list[tuple[tuple[str, ...], int, Sub]] = []
        self._cache: dict[str, tuple[Sub, ...]] = {}
        self._seq = 0

    def subscribe(self, pattern: str, fn: Handler, inst: Any = None) -> None:
        """Subscribe ``fn`` (bound to ``inst``) to ``pattern``; ``any`` parts are wildcards."""
        self._seq += 1
        parts = tuple(pattern.split("."))
        if "any" in parts:
            self._wild.append((parts, self._seq, (fn, inst)))
        else:
            self._exact.setdefault(pattern, []).append((self._seq, (fn, inst)))
        if self._cache:
            self._cache.clear()

    def subscribers(self, name: str) -> tuple[Sub, ...]:
        """The subscribers of the literal event ``name``, in subscription order."""
        subs = self._cache.get(name)
        if subs is not None:
            return subs
        found = list(self._exact.get(name, ()))
        if self._wild:
            parts = name.split(".")
            n = len(parts)
            extra = [(seq, sub) for pat, seq, sub in self._wild
                     if len(pat) == n and all(p == "any" or p == q
                                              for p, q in zip(pat, parts, strict=True))]
            if extra:
                found.extend(extra)
                found.sort(key=lambda e: e[0])
        subs = tuple(sub for _, sub in found)
        self._cache[name] = subs
        return subs

    def has_subscribers(self, name: str) -> bool:
        return bool(self.subscribers(name))

    def names(self) -> list[str]:
        """Every subscribed pattern, for introspection."""
        return list(self._exact) + [".".join(p) for p, _, _ in self._wild]
