"""The chat-completions wire format beyond plain text (used by the openai provider).

- :func:`request_options`: ``response_format`` (``schema:``, strict JSON Schema) and
  ``tools`` (``tools:``) of a request body;
- :func:`history_messages`: earlier tool rounds as assistant ``tool_calls`` messages
  followed by one ``tool`` message per result;
- :func:`reply`: a reply's ``message`` as text or a :class:`ToolRequest`;
- :class:`StreamReader`: a server-sent-events (``stream: true``) reply, chunk by chunk;
- :func:`rate_limit_pause`: how long the endpoint asked to pause (``x-ratelimit-*``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from cxpar.jsonschemas import json_data

from .base import ProviderError
from .turns import ToolCall, ToolRequest, ToolRound, ToolSpec

__all__ = ["StreamReader", "history_messages", "rate_limit_pause", "reply",
           "request_options", "strict_schema"]

#: The ``json_schema.name`` sent with a call's ``schema``.
SCHEMA_NAME = "result"


def strict_schema(schema: Any) -> Any:
    """``schema`` for OpenAI's strict mode: every object schema without its own
    ``additionalProperties`` gets ``additionalProperties: false`` (the strict mode
    requires it; validation by cxpar is unaffected)."""
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    is_object = out.get("type") == "object" or (isinstance(out.get("type"), list)
                                                and "object" in out["type"])
    if is_object and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _tool(spec: ToolSpec) -> dict[str, Any]:
    return {"type": "function", "function": {"name": spec.name, "description": spec.description,
                                             "parameters": spec.parameters}}


def request_options(schema: Mapping[str, Any] | None,
                    tools: list[ToolSpec] | None) -> dict[str, Any]:
    """The body keys a call's ``schema`` and ``tools`` add."""
    out: dict[str, Any] = {}
    if schema is not None:
        out["response_format"] = {"type": "json_schema", "json_schema": {
            "name": SCHEMA_NAME, "schema": strict_schema(json_data(dict(schema))),
            "strict": True}}
    if tools:
        out["tools"] = [_tool(t) for t in tools]
    return out


def history_messages(history: list[ToolRound]) -> list[dict[str, Any]]:
    """Each earlier round: the assistant's tool calls, then one ``tool`` message per call."""
    msgs: list[dict[str, Any]] = []
    for rnd in history:
        req = rnd.request
        raw = req.raw if isinstance(req.raw, dict) else None
        calls = [{"id": c.id, "type": "function",
                  "function": {"name": c.name, "arguments": c.arguments}} for c in req.calls]
        msg: dict[str, Any] = {"role": "assistant", "content": req.text, "tool_calls": calls}
        if raw is not None and raw.get("role") == "assistant":
            msg = {**raw, "tool_calls": calls}
        msgs.append(msg)
        for call, result in zip(req.calls, rnd.results, strict=False):
            msgs.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return msgs


def _calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    out = []
    for i, c in enumerate(raw):
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ProviderError(f"unexpected reply from {where}: tool call {i} has no "
                                "function name", retryable=False)
        args = fn.get("arguments")
        if not isinstance(args, str):
            args = json.dumps(args) if args is not None else "{}"
        cid = c.get("id")
        out.append(ToolCall(cid if isinstance(cid, str) and cid else f"call_{i + 1}",
                            fn["name"], args))
    return tuple(out)


def reply(message: Any, where: str) -> str | ToolRequest:
    """The answer in a reply's ``choices[0].message``: a :class:`ToolRequest` when it
    calls tools, else its text content."""
    if not isinstance(message, dict):
        raise ProviderError(f"unexpected reply from {where}: no choices[0].message",
                            retryable=False)
    calls = message.get("tool_calls")
    content = message.get("content")
    if isinstance(calls, list) and calls:
        text = content if isinstance(content, str) else None
        return ToolRequest(_calls(calls, where), text,
                           {"role": "assistant", "content": text})
    if not isinstance(content, str):
        raise ProviderError(f"unexpected reply from {where}: message content is "
                            f"{type(content).__name__}, not a string", retryable=False)
    return content


class StreamReader:
    """Reads a ``stream: true`` reply (server-sent events), calling ``on_chunk`` with each
    piece of text as it arrives; :meth:`result` is the whole answer, ``usage`` the last
    ``usage`` object seen (``stream_options.include_usage``)."""

    def __init__(self, on_chunk: Callable[[str], None] | None, where: str) -> None:
        self.on_chunk = on_chunk
        self.where = where
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Any = None
        self.model: str | None = None
        self.done = False
        self._data: list[str] = []

    def feed_line(self, line: str) -> None:
        """One line of the event stream (without its line break)."""
        if line == "":
            if self._data:
                self._event("\n".join(self._data))
                self._data = []
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)

    def close(self) -> None:
        if self._data:
            self._event("\n".join(self._data))
            self._data = []

    def _event(self, data: str) -> None:
        if data.strip() == "[DONE]":
            self.done = True
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ProviderError(f"malformed stream event from {self.where}: "
                                f"{data[:80]!r}", retryable=False) from None
        if not isinstance(chunk, dict):
            return
        if isinstance(chunk.get("error"), dict):
            msg = chunk["error"].get("message", "error")
            raise ProviderError(f"stream from {self.where} failed: {msg}")
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                continue
            text = delta.get("content")
            if isinstance(text, str) and text:
                self.parts.append(text)
                if self.on_chunk is not None:
                    self.on_chunk(text)
            for tc in delta.get("tool_calls") or ():
                if not isinstance(tc, dict):
                    continue
                idx = tc.get("index", len(self.calls))
                slot = self.calls.setdefault(int(idx) if isinstance(idx, int) else 0,
                                             {"id": "", "name": "", "arguments": ""})
                if isinstance(tc.get("id"), str):
                    slot["id"] = tc["id"]
                fn = tc.get("function")
                if isinstance(fn, dict):
                    if isinstance(fn.get("name"), str):
                        slot["name"] += fn["name"]
                    if isinstance(fn.get("arguments"), str):
                        slot["arguments"] += fn["arguments"]

    def result(self) -> str | ToolRequest:
        text = "".join(self.parts)
        if self.calls:
            raw = [{"id": c["id"], "function": {"name": c["name"], "arguments": c["arguments"]}}
                   for _, c in sorted(self.calls.items())]
            return ToolRequest(_calls(raw, self.where), text or None,
                               {"role": "assistant", "content": text or None})
        return text


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(value: str | None) -> float | None:
    """OpenAI's reset durations (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) or plain
    seconds, as seconds; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
        return secs if math.isfinite(secs) and secs >= 0 else None
    except ValueError:
        pass
    total, pos = 0.0, 0
    for m in _DURATION.finditer(value):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
        pos = m.end()
    return total if pos == len(value) and pos else None


def rate_limit_pause(headers: Mapping[str, str]) -> float | None:
    """Seconds the endpoint asked every caller to wait: when
    ``x-ratelimit-remaining-requests`` or ``-tokens`` is 0, its ``x-ratelimit-reset-*``
    (the longer of the two); None when neither is exhausted."""
    pause: float | None = None
    for kind in ("requests", "tokens"):
        left = headers.get(f"x-ratelimit-remaining-{kind}")
        if left is None:
            continue
        try:
            exhausted = float(left) <= 0
        except ValueError:
            continue
        if exhausted:
            reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
            if reset is not None:
                pause = reset if pause is None else max(pause, reset)
    return pause
