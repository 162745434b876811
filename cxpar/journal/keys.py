"""How a provider call is identified in a journal.

A call's key is ``(stream, service, canonical request, occurrence)``:

- **stream**: the batch record's index, or :data:`SINGLE_STREAM` for a single run (and
  the REPL);
- **service**: ``think``, ``is``, a plug-in name …;
- **canonical request**: the request as the provider receives it, as one-line JSON
  (:func:`cxpar.runtime.values.to_json`: props in source order, numbers as CX prints
  them), plus the model a call chose, its ``schema``, ``tools`` and earlier tool rounds
  when it has them (:func:`canonical`), stored in full and hashed for the index;
- **occurrence**: which call of that same request within the stream this is (0, 1, …).

The key never includes the endpoint, the endpoint's default model or the API key: a journal recorded
against one server replays against another, or none. It does not depend on the order in
which calls finish either: identical requests are interchangeable, so each in-flight call
takes the lowest occurrence no other call of the run holds (:class:`Occurrences`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cxpar.runtime.values import to_json

__all__ = ["SINGLE_STREAM", "Occurrences", "canonical", "request_hash", "storable"]

#: The stream of a single run (batch records are 0, 1, …).
SINGLE_STREAM = -1


def canonical(request: Mapping[str, Any], context: Any = None) -> str:
    """The canonical text of a request: the one-line JSON the provider receives, plus —
    only when the call has them — what else shapes the answer: the model the call chose
    (``model:`` or ``[routing]``; never the endpoint's URL or default model), its
    ``schema``, its ``tools`` and the tool rounds so far (each round is its own call)."""
    text = to_json(dict(request))
    if context is None:
        return text
    extra: dict[str, Any] = {}
    model = getattr(context, "chosen_model", None)
    if model:
        extra["model"] = model
    if getattr(context, "schema", None) is not None:
        extra["schema"] = context.schema
    tools = getattr(context, "tools", None)
    if tools:
        extra["tools"] = [[t.name, t.event, t.description, t.parameters] for t in tools]
    history = getattr(context, "history", None)
    if history:
        extra["rounds"] = [[r.request.to_data(), list(r.results)] for r in history]
    return text if not extra else text + "\n" + json.dumps(extra, sort_keys=True,
                                                           ensure_ascii=False)


def request_hash(service: str, text: str) -> bytes:
    """The index key of ``(service, canonical request)``: 16 bytes of SHA-256."""
    h = hashlib.sha256(service.encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.digest()[:16]


def storable(text: str) -> str:
    """``text`` as SQLite can store it (lone surrogates written as ``\\udXXX``)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class Occurrences:
    """Which occurrences of each ``(stream, service, request)`` this run holds.

    A call takes the lowest free occurrence when it starts and keeps it once it has an
    answer (served or recorded); a call that fails or is cancelled gives it back, so its
    retry — or the next identical call — asks for the same one again.
    """

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: dict[int, dict[tuple[str, bytes], set[int]]] = {}

    def take(self, stream: int, service: str, digest: bytes) -> int:
        """The lowest occurrence of this request no other call holds (now held)."""
        per = self._held.get(stream)
        if per is None:
            per = self._held[stream] = {}
        held = per.get((service, digest))
        if held is None:
            per[(service, digest)] = {0}
            return 0
        n = 0
        while n in held:
            n += 1
        held.add(n)
        return n

    def give_back(self, stream: int, service: str, digest: bytes, n: int) -> None:
        """Release occurrence ``n`` (its call failed or was cancelled)."""
        held = self._held.get(stream, {}).get((service, digest))
        if held is not None:
            held.discard(n)

    def forget_stream(self, stream: int) -> None:
        """Drop the bookkeeping of a finished batch stream."""
        self._held.pop(stream, None)
