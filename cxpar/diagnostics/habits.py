"""Diagnostics for habits users bring from other languages and libraries (issue 15).

Shared by the parser (syntax errors) and analysis, so each habit has one wording.
"""

from __future__ import annotations

from cxpar import lang
from cxpar.diagnostics.model import Diagnostic, error
from cxpar.diagnostics.suggest import distance
from cxpar.span import Span

#: Names people give reserved props, from other libraries' options.
RESERVED_ALIASES: dict[str, str] = {
    "retry": "retries", "maxRetries": "retries", "retryCount": "retries",
    "max_retries": "retries", "timeoutMs": "timeout", "timeout_ms": "timeout",
    "handler": "handlers", "callbacks": "handlers", "maxConcurrency": "concurrency",
    "parallelism": "concurrency",
}


def reserved_near_miss(key: str) -> str | None:
    """The reserved prop (SPEC §4.4) that ``key`` is probably a misspelling of, if any."""
    if key in lang.RESERVED_PROPS:
        return None
    alias = RESERVED_ALIASES.get(key)
    if alias is not None:
        return alias
    low = key.lower()
    for prop in lang.RESERVED_PROPS:
        if low == prop or (len(low) > 4 and distance(low, prop) <= 1):
            return prop
    return None


def emit_value(span: Span) -> Diagnostic:
    """CX118: ``emit`` used where a value is needed."""
    return error("CX118", "`emit` is a statement and has no value", span,
                 label="used as a value",
                 help="write `emit a.b { ... };` on its own: it queues the event and does not "
                      "wait for the handlers; to get their results, use a parallel handler "
                      "parameter (`var r = think { prompt: p, k: a.b };` gives `r.k`)")
