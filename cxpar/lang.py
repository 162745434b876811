"""Language tables shared by analysis, codegen and runtime."""

from __future__ import annotations

from collections.abc import Iterable

#: Built-in services and the stem of the events they emit (SPEC §4.4 step 5).
SERVICE_STEMS: dict[str, str] = {
    "think": "thinking",
    "infer": "inferring",
    "learn": "learning",
    "adapt": "adapting",
    "execute": "executing",
    "await": "awaiting",
    "iam": "iam",
    "is": "is",
    "not": "not",
}

#: Props that configure a service call and are never sent to the provider.
RESERVED_PROPS: tuple[str, ...] = ("handlers", "timeout", "retries", "priority", "concurrency",
                                   "fallback", "model", "endpoint", "schema", "tools",
                                   "tool_rounds", "stream")

#: Services whose answer is not model text: no ``schema``/``tools``/``stream``.
NO_MODEL_OPTIONS: tuple[str, ...] = ("is", "not", "learn", "await")

#: Reserved props that configure the model request of a call (docs/language.md).
MODEL_PROPS: tuple[str, ...] = ("model", "endpoint", "schema", "tools", "tool_rounds", "stream")

#: Payload keys that a request prop or branch key may not use (SPEC §10 rule 7).
RESERVED_PAYLOAD_KEYS: tuple[str, ...] = ("result", "_errors", "_parallel", "_tools")

#: Builtin functions callable from CX.
BUILTINS: tuple[str, ...] = ("print", "len", "str", "num", "keys", "now", "random",
                             "parse_json", "to_json")

#: How many arguments each builtin takes (``print`` takes any number).
BUILTIN_ARITY: dict[str, int] = {"len": 1, "str": 1, "num": 1, "keys": 1, "now": 0, "random": 0}
BUILTIN_USAGE: dict[str, str] = {"len": "len(x)", "str": "str(x)", "num": "num(x)",
                                 "keys": "keys(obj)", "now": "now()", "random": "random()"}

#: Default simulated latency per service in ms (SPEC §10 rule 20; also `cxpar graph`).
DEFAULT_LATENCY_MS: dict[str, float] = {
    "think": 800,
    "infer": 300,
    "learn": 200,
    "adapt": 400,
    "execute": 200,
    "await": 0,
    "iam": 100,
    "is": 300,
    "not": 300,
}

DEFAULT_TIMEOUT_MS = 30_000
MAX_DEPTH = 64


def parse_latency(text: str | None) -> dict[str, float]:
    """``think=800,infer=300`` → ``{"think": 800.0, "infer": 300.0}``; ValueError if bad."""
    out: dict[str, float] = {}
    if not text:
        return out
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"expected `service=ms`, got `{part}`")
        try:
            ms = float(value)
        except ValueError:
            raise ValueError(f"latency of `{name}` must be a number of ms, got `{value}`") \
                from None
        if ms < 0 or ms != ms or ms == float("inf"):
            raise ValueError(f"latency of `{name}` must be a non-negative number of ms")
        out[name] = ms
    return out


def check_latency_services(latency: dict[str, float], known: Iterable[str]) -> None:
    """ValueError for a ``--latency`` service name that is no known service (``thnk=5``),
    with a did-you-mean; ``known``: the built-in and plug-in service names."""
    from cxpar.diagnostics.suggest import suggest

    names = set(known)
    for name in latency:
        if name not in names:
            hint = suggest(name, names)
            raise ValueError(f"--latency: unknown service `{name}`" + (
                f"; did you mean `{hint}`?" if hint else
                "; known services: " + ", ".join(f"`{k}`" for k in sorted(names))))

#: Names users give a handler's event (`on a.b (e) { ... }`): written undeclared in a
#: handler whose event has another name, they get CX210 "did you mean".
EVENT_NAMES = frozenset({"event", "e", "ev", "evt", "payload", "msg", "message"})
