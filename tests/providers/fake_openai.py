"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the provider tests.

``POST /v1/chat/completions`` answers according to ``server.script``: a callable taking
the decoded request JSON and returning an :class:`Act` (or a string: a 200 answer with
that content). An act may call tools (``tool_calls``: several per round) and is sent as
server-sent events when the request asks for ``stream: true`` (``chunks``: the pieces of
the content, one event each). :func:`openai_like` is a script that behaves like a model
server: it honours ``response_format`` (an object satisfying the JSON Schema, checked
with ``jsonschema``), calls every offered tool in the first round and answers with the
tools' results after that. Every request is recorded (``server.requests``: method, path, headers,
JSON); when the client closes a connection while the server is still holding a reply,
``server.closed_early`` gets the request's number. Threaded (one thread per connection),
HTTP/1.1 keep-alive, loopback only.

Every 200 completion carries a ``usage`` object, by default :func:`usage_for` (a rule
unlike cxpar's own estimate, so tests can tell them apart); ``Act.usage`` overrides it
(``{}`` leaves it out). ``server.usage_sent`` sums what the server reported.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer


@dataclass
class Act:
    """What the server does with one request."""

    content: str | None = "ok"   # the reply's message content (status 200)
    status: int = 200
    body: bytes | str | None = None   # raw body instead of a completion
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0           # seconds before answering (watching for a client close)
    drop: bool = False           # close the connection without any response
    chunked: bool = False        # send the body chunked (no Content-Length)
    usage: dict[str, Any] | None = None   # the reply's usage (None: usage_for; {}: none)
    model: str | None = None     # the model the reply names (default: the request's)
    tool_calls: list[dict[str, Any]] | None = None  # [{"name", "arguments"}] (several per round)
    chunks: list[str] | None = None  # streamed pieces (default: the content in 3 pieces)
    chunk_delay: float = 0.0     # seconds between streamed chunks


def usage_for(request: Any, content: str) -> dict[str, int]:
    """The server's token count: 1 per 3 characters of the messages + 5, and 1 per 2
    characters of the answer + 1 (deliberately not cxpar's characters / 4)."""
    chars = sum(len(str(m.get("content", ""))) for m in (request or {}).get("messages", []))
    pin, pout = chars // 3 + 5, len(content) // 2 + 1
    return {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout}


def _tool_calls(act: Act) -> list[dict[str, Any]]:
    return [{"id": c.get("id", f"call_{i}"), "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]
                          if isinstance(c["arguments"], str) else json.dumps(c["arguments"])}}
            for i, c in enumerate(act.tool_calls or ())]


def completion(content: str | None, model: str = "m", usage: dict[str, Any] | None = None,
               act: Act | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    finish = "stop"
    if act is not None and act.tool_calls:
        message["tool_calls"] = _tool_calls(act)
        finish = "tool_calls"
    body: dict[str, Any] = {
        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": finish, "message": message}]}
    body["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2} \
        if usage is None else usage
    if not body["usage"]:
        del body["usage"]
    return body


def sse_events(act: Act, model: str, usage: dict[str, Any] | None = None) -> list[bytes]:
    """The server-sent events of a streamed reply (the last one carries the usage)."""
    def event(delta: dict[str, Any], finish: str | None = None,
              usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {"id": "cmpl-1", "object": "chat.completion.chunk",
                                 "model": model, "choices": [
                                     {"index": 0, "delta": delta, "finish_reason": finish}]}
        if usage is not None:
            chunk["choices"] = []
            chunk["usage"] = usage
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    out = [event({"role": "assistant"})]
    content = act.content or ""
    pieces = act.chunks if act.chunks is not None else (
        [content[i:i + max(1, len(content) // 3 + 1)]
         for i in range(0, len(content), max(1, len(content) // 3 + 1))] if content else [])
    for piece in pieces:
        out.append(event({"content": piece}))
    for i, call in enumerate(_tool_calls(act)):
        args = call["function"]["arguments"]
        half = len(args) // 2
        out.append(event({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"],
                                                       "arguments": args[:half]}}]}))
        out.append(event({"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]}))
    out.append(event({}, "tool_calls" if act.tool_calls else "stop"))
    if usage:
        out.append(event({}, usage=usage))
    out.append(b"data: [DONE]\n\n")
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        with srv.lock:
            n = len(srv.requests)
            srv.requests.append({"path": self.path, "headers": dict(self.headers),
                                 "json": data, "t": time.monotonic()})
        if self.path != "/v1/chat/completions":
            self._send(404, b'{"error": "not found"}', {})
            return
        act = srv.script(data) if srv.script is not None else Act()
        if isinstance(act, str):
            act = Act(content=act)
        if act.delay and not self._wait(act.delay, n):
            return
        if act.drop:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        model = act.model if act.model is not None else \
            (data or {}).get("model", "") if isinstance(data, dict) else ""
        usage = usage_for(data, act.content or "") if act.usage is None else act.usage
        if act.body is None and act.status == 200 and usage:
            with srv.lock:
                srv.usage_sent.append(usage)
        if act.body is None and act.status == 200 and isinstance(data, dict) \
                and data.get("stream"):
            self._send_stream(sse_events(act, model, usage), act.headers, act.chunk_delay)
            return
        if act.body is not None:
            body = act.body.encode() if isinstance(act.body, str) else act.body
        elif act.status == 200:
            body = json.dumps(completion(act.content if act.tool_calls else act.content or "",
                                         model, usage, act)).encode()
        else:
            body = json.dumps({"error": {"message": f"status {act.status}"}}).encode()
        self._send(act.status, body, act.headers, chunked=act.chunked)

    def _send_stream(self, events: list[bytes], headers: dict[str, str], delay: float) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            for i, ev in enumerate(events):
                if i and delay:
                    time.sleep(delay)
                self.wfile.write(f"{len(ev):x}\r\n".encode() + ev + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _wait(self, delay: float, n: int) -> bool:
        """Sleep ``delay`` s; False (and record it) if the client closes meanwhile."""
        end = time.monotonic() + delay
        sock = self.connection
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return True
            r, _, _ = select.select([sock], [], [], min(left, 0.02))
            if r:
                try:
                    peek = sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    peek = b""
                if not peek:
                    with self.server.lock:
                        self.server.closed_early.append(n)
                    self.close_connection = True
                    return False

    def _send(self, status: int, body: bytes, headers: dict[str, str], *,
              chunked: bool = False) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if not chunked:
                self.wfile.write(body)
                return
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True


class FakeServer(LoopbackServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.requests: list[dict[str, Any]] = []
        self.closed_early: list[int] = []
        #: The ``usage`` objects of the completions sent, in order.
        self.usage_sent: list[dict[str, Any]] = []
        self.script: Callable[[Any], Act | str] | None = None
        self.connections = 0

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self.lock:
            self.connections += 1
        return conn, addr

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def wait_closed(self, n: int = 1, timeout: float = 3.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.closed_early) >= n:
                    return True
            time.sleep(0.01)
        return False

    def tokens_sent(self) -> tuple[int, int]:
        """Sums of ``prompt_tokens`` and ``completion_tokens`` over the replies sent."""
        with self.lock:
            return (sum(u.get("prompt_tokens", 0) for u in self.usage_sent),
                    sum(u.get("completion_tokens", 0) for u in self.usage_sent))

    def user_messages(self) -> list[str]:
        return [r["json"]["messages"][-1]["content"] for r in self.requests if r["json"]]


# ------------------------------------------------------------------ a model-like script
def _sample(schema: Any, key: str = "value") -> Any:
    """A simple value satisfying ``schema`` (the fake server's own, independent of cxpar)."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][-1]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {k: _sample(v, k) for k, v in (schema.get("properties") or {}).items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), key) for _ in range(schema.get("minItems", 1))]
    if kind == "integer":
        return int(schema.get("minimum", 7))
    if kind == "number":
        return float(schema.get("minimum", 2.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return f"{key} from the server"


def openai_like(data: Any) -> Act:
    """Answer like a model server: tools first, then JSON for ``response_format``."""
    msgs = data.get("messages", [])
    tools = data.get("tools") or []
    results = [m for m in msgs if m.get("role") == "tool"]
    if tools and not results:
        calls = []
        for i, t in enumerate(tools):
            fn = t["function"]
            args = _sample(fn.get("parameters", {})) if fn.get("parameters", {}).get(
                "properties") else {"q": msgs[-1]["content"]}
            calls.append({"id": f"call_{i}", "name": fn["name"], "arguments": args})
        return Act(content=None, tool_calls=calls)
    fmt = data.get("response_format")
    if fmt and fmt.get("type") == "json_schema":
        import jsonschema

        schema = fmt["json_schema"]["schema"]
        value = _sample(schema)
        jsonschema.validate(value, schema)
        return Act(content=json.dumps(value))
    text = "answer"
    if results:
        text += " with " + "; ".join(m["content"] for m in results)
    return Act(content=text)
