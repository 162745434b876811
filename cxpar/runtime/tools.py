"""CX handlers as tools (``tools: [...]``, docs/language.md "Tools").

:class:`ModelOptions` holds a call's model-facing reserved props (``schema``, ``tools``,
``tool_rounds``, ``stream``) once they are checked. The coordinator runs the rounds:
when the provider answers a :class:`~.providers.turns.ToolRequest`, each call becomes a
branch-like invocation of the tool's event (:func:`prepare_call` parses and checks its
arguments first), every result is sent back (:func:`result_text`) and logged in the
payload's ``_tools`` (:func:`log_entry`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cxpar.jsonschemas import json_data, schema_problem, violation

from .errors import CxRuntimeError
from .providers.turns import ToolCall, ToolSpec
from .structured import from_json
from .values import to_json, type_name

__all__ = ["DEFAULT_TOOL_ROUNDS", "ModelOptions", "model_options", "prepare_call",
           "result_text", "tool_specs"]

#: Rounds of tool calls a call may make unless ``tool_rounds`` says otherwise.
DEFAULT_TOOL_ROUNDS = 8
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
#: Longest function name OpenAI-compatible servers accept.
MAX_NAME = 64


@dataclass(slots=True)
class ModelOptions:
    """A call's checked ``schema`` / ``tools`` / ``tool_rounds`` / ``stream``."""

    schema: dict[str, Any] | None = None
    tools: list[ToolSpec] | None = None
    tool_rounds: int = DEFAULT_TOOL_ROUNDS
    stream: str | None = None
    by_name: dict[str, ToolSpec] = field(default_factory=dict)
    #: Why the call cannot be sent: a computed ``schema`` (or tool ``parameters``) that is
    #: not a valid JSON Schema. The call fails with type ``provider`` without a request.
    invalid: str | None = None


class InvalidSchema(ValueError):
    """A computed schema that is not a valid JSON Schema (the message says why)."""


def _function_name(event: str, taken: set[str]) -> str:
    base = _UNSAFE.sub("_", event.replace(".", "_"))[:MAX_NAME] or "tool"
    name, n = base, 2
    while name in taken:
        suffix = f"_{n}"
        name = base[:MAX_NAME - len(suffix)] + suffix
        n += 1
    taken.add(name)
    return name


def tool_specs(items: Sequence[Any], span: int) -> list[ToolSpec]:
    """The tools of a call from the compiled ``tools`` list: each item a dict with
    ``event``, ``description`` (the handler's ``///`` doc when not given) and
    ``parameters`` (None: free-form). CxRuntimeError for a bad computed value,
    :class:`InvalidSchema` for ``parameters`` that are not a valid JSON Schema."""
    out: list[ToolSpec] = []
    taken: set[str] = set()
    for item in items:
        event = item["event"]
        desc = item.get("description")
        if desc is None:
            desc = item.get("doc") or f"Runs the CX handler of `{event}` and returns its result."
        if type(desc) is not str:
            raise CxRuntimeError(f"the `description` of tool `{event}` must be a string, "
                                 f"got {type_name(desc)}", span)
        params = item.get("parameters")
        free = params is None
        if free:
            schema: dict[str, Any] = {"type": "object"}
        else:
            why = schema_problem(params)
            if why is not None:
                raise InvalidSchema(f"the `parameters` of tool `{event}` are not a valid "
                                    f"JSON Schema: {why}")
            schema = json_data(params)
        out.append(ToolSpec(_function_name(event, taken), event, desc, schema, free))
    return out


def model_options(span: int, schema: Any = None, tools: Any = None, tool_rounds: Any = None,
                  stream: Any = None) -> ModelOptions | None:
    """The checked options of one call (None when it has none of them). A computed
    schema that is not a valid JSON Schema sets :attr:`ModelOptions.invalid` (a provider
    failure of the call, issue 20); other bad values are CX runtime errors."""
    if schema is None and tools is None and tool_rounds is None and stream is None:
        return None
    opts = ModelOptions()
    if schema is not None:
        why = schema_problem(schema)
        if why is not None:
            opts.invalid = f"`schema` is not a valid JSON Schema: {why}"
        else:
            opts.schema = json_data(schema)
    if tools is not None:
        try:
            opts.tools = tool_specs(tools, span)
        except InvalidSchema as exc:
            opts.invalid = opts.invalid or str(exc)
            opts.tools = []  # `_tools` is still there (empty: nothing was called)
        else:
            opts.by_name = {t.name: t for t in opts.tools}
    if tool_rounds is not None:
        if type(tool_rounds) not in (int, float) or tool_rounds != tool_rounds or \
                tool_rounds < 1 or int(tool_rounds) != tool_rounds:
            raise CxRuntimeError(f"`tool_rounds` must be a whole number >= 1, got "
                                 f"{type_name(tool_rounds)}", span)
        opts.tool_rounds = int(tool_rounds)
    opts.stream = stream
    return opts


def prepare_call(opts: ModelOptions, call: ToolCall) -> tuple[ToolSpec | None, Any, str | None]:
    """``(tool, arguments as a CX value, problem)`` of one call the model made; a problem
    (an unknown tool, arguments that are not a JSON object or fail ``parameters``) goes
    back to the model as the call's error, and the handler does not run."""
    spec = opts.by_name.get(call.name)
    try:
        data = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        return spec, call.arguments, f"the arguments are not JSON ({exc})"
    if spec is None:
        names = ", ".join(f"`{n}`" for n in opts.by_name)
        return None, from_json(data), f"there is no tool `{call.name}` (tools: {names})"
    if type(data) is not dict:
        return spec, from_json(data), "the arguments must be a JSON object"
    if not spec.free_form:
        why = violation(data, spec.parameters)
        if why is not None:
            return spec, from_json(data), f"the arguments do not match the tool's " \
                                          f"parameters: {why}"
    return spec, from_json(data), None


def result_text(value: Any, error: dict[str, Any] | None) -> str:
    """What the model gets back for one call: the handler's value as JSON, or
    ``{"error": {"type", "message"}}``."""
    if error is not None:
        return to_json({"error": {"type": error["type"], "message": error["message"]}})
    return to_json(value)


def log_entry(event: str, arguments: Any, value: Any, error: dict[str, Any] | None,
              round_no: int) -> dict[str, Any]:
    """One ``_tools`` entry: ``{name, arguments, result, error, round}``."""
    return {"name": event, "arguments": arguments, "result": None if error else value,
            "error": error, "round": float(round_no)}
