"""Diagnostics for habits users bring from other languages and libraries (issue 15).

Shared by the parser (syntax errors) and analysis, so each habit has one wording.
"""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=4096)
def reserved_near_miss(key: str) -> str | None:
    """The reserved prop (SPEC §4.4) that ``key`` is probably a misspelling of, if any
    (remembered per key: a program repeats its keys in every call)."""
    if key in lang.RESERVED_PROPS:
        return None
    alias = RESERVED_ALIASES.get(key)
    if alias is not None:
        return alias
    low = key.lower()
    for prop in lang.RESERVED_PROPS:
        # the distance is at least the difference in length
        if low == prop or (len(low) > 4 and abs(len(low) - len(prop)) <= 1
                           and distance(low, prop) <= 1):
            return prop
    return None


def emit_value(span: Span) -> Diagnostic:
    """CX118: ``emit`` used where a value is needed."""
    return error("CX118", "`emit` is a statement and has no value", span,
                 label="used as a value",
                 help="write `emit a.b { ... };` on its own: it queues the event and does not "
                      "wait for the handlers; to get their results, use a parallel handler "
                      "parameter (`var r = think { prompt: p, k: a.b };` gives `r.k`)")


def strict_equality(span: Span, op: str) -> Diagnostic:
    """CX117: JavaScript's ``===``/``!==``, read as ``==``/``!=``."""
    fix = op[:2]
    return error("CX117", f"CX has no `{op}`; use `{fix}`", span, label=f"write `{fix}`",
                 help=f"`{fix}` never converts types in CX (`1 == \"1\"` is false), so it is "
                      f"already what `{op}` is in JavaScript")


_EXCEPTIONS = ("a runtime error ends only the handler, branch or top "
               "level it happens in and is reported with its location (exit 3); a failed "
               "service call or branch is recorded in the result's `_errors` (`r._errors`)")
_FUNCTIONS = ("put a reusable step in an `on` handler and run it as a "
              "parallel handler parameter (`var r = think { prompt: p, k: steps.compute };` "
              "gives `r.k`), or `emit` an event")
_CLASSES = ("declare an entity: `conscious Name { realize(self) { ... } on a.b (e) { ... } }` "
            "(`object` for one without AI services; `conscious B : A` inherits)")

#: word -> (what CX has instead, how far the construct goes: "block", "line" or "stmt").
FOREIGN_WORDS: dict[str, tuple[str, str]] = {
    "try": (_EXCEPTIONS, "block"),
    "catch": (_EXCEPTIONS, "block"),
    "finally": (_EXCEPTIONS, "block"),
    "throw": (_EXCEPTIONS, "stmt"),
    "function": (_FUNCTIONS, "block"),
    "func": (_FUNCTIONS, "block"),
    "fn": (_FUNCTIONS, "block"),
    "def": (_FUNCTIONS, "line"),
    "class": (_CLASSES, "block"),
    "interface": (_CLASSES, "block"),
    "struct": (_CLASSES, "block"),
    "import": ("a CX program is one file: copy what it needs into it", "stmt"),
    "export": ("a CX program is one file: copy what it needs into it", "stmt"),
    "using": ("a CX program is one file: copy what it needs into it", "stmt"),
    "switch": ("write `if (x == 1) { ... } else if (x == 2) { ... } else { ... }`", "block"),
    "do": ("write `while (cond) { ... }` (run the body once before it if needed)", "block"),
    "foreach": ("write `for (var x in items) { ... }`", "block"),
}


def foreign_construct(span: Span, word: str) -> Diagnostic:
    """CX120: a construct of another language (``try``, ``function``, ``class`` ...)."""
    what = "`try`/`catch`" if word in ("try", "catch", "finally") else f"`{word}`"
    return error("CX120", f"CX has no {what}", span, label="from another language",
                 help=FOREIGN_WORDS[word][0])
