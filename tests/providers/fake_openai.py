"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the provider tests.

``POST /v1/chat/completions`` answers according to ``server.script``: a callable taking
the decoded request JSON and returning an :class:`Act` (or a string: a 200 answer with
that content). Every request is recorded (``server.requests``: method, path, headers,
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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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


def usage_for(request: Any, content: str) -> dict[str, int]:
    """The server's token count: 1 per 3 characters of the messages + 5, and 1 per 2
    characters of the answer + 1 (deliberately not cxpar's characters / 4)."""
    chars = sum(len(str(m.get("content", ""))) for m in (request or {}).get("messages", []))
    pin, pout = chars // 3 + 5, len(content) // 2 + 1
    return {"prompt_tokens": pin, "completion_tokens": pout, "total_tokens": pin + pout}


def completion(content: str, model: str = "m",
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "cmpl-1", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}]}
    body["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2} \
        if usage is None else usage
    if not body["usage"]:
        del body["usage"]
    return body


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
        if act.body is not None:
            body = act.body.encode() if isinstance(act.body, str) else act.body
        elif act.status == 200:
            usage = usage_for(data, act.content or "") if act.usage is None else act.usage
            if usage:
                with srv.lock:
                    srv.usage_sent.append(usage)
            model = act.model if act.model is not None else (data or {}).get("model", "")
            body = json.dumps(completion(act.content or "", model, usage)).encode()
        else:
            body = json.dumps({"error": {"message": f"status {act.status}"}}).encode()
        self._send(act.status, body, act.headers, chunked=act.chunked)

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


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.closed_early: list[int] = []
        #: The ``usage`` objects of the completions sent, in order.
        self.usage_sent: list[dict[str, Any]] = []
        self.script: Callable[[Any], Act | str] | None = None
        self.connections = 0
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self.lock:
            self.connections += 1
        return conn, addr

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)

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
