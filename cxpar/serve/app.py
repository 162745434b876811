"""The Starlette application of ``cxpar serve``: routes over the public Python API."""

from __future__ import annotations

import contextlib
import hmac
import json
import os
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from cxpar import Program, RunSettings

from .metrics import CONTENT_TYPE, Metrics
from .runs import Run, Runs

__all__ = ["ServeOptions", "create_app"]

DEFAULT_MAX_BODY = 1024 * 1024
STATIC = files("cxpar.serve") / "static"


class ServeOptions:
    """What the server needs besides the program and its settings."""

    def __init__(self, *, token: str | None = None, max_body: int = DEFAULT_MAX_BODY,
                 grace_s: float = 10.0, keep: int = 1000, provider: Any = None) -> None:
        self.token = token or None
        self.max_body = max_body
        self.grace_s = grace_s
        self.keep = keep
        self.provider = provider


class ApiError(Exception):
    """An error answered as ``{"error": {"status", "message"}}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Redactor:
    """Replaces secrets (the provider's API key, its extra header values) with ``***``
    in everything the server sends."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def secrets_of(settings: RunSettings) -> list[str]:
    """What must never be sent: ``CXPAR_API_KEY`` and the provider's header values."""
    key = os.environ.get("CXPAR_API_KEY", "").strip()
    return [key, *settings.provider.headers.values()]


class SafeJSON(JSONResponse):
    """A JSON response with secrets redacted."""

    redact: Redactor = Redactor([])

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return self.redact(text).encode("utf-8")


def error_response(status: int, message: str, headers: dict[str, str] | None = None
                   ) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "message": message}}, status,
                        headers=headers)


# ---------------------------------------------------------------- requests

async def read_body(request: Request, limit: int) -> bytes:
    """The request body; 413 past ``limit`` bytes (checked before and while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, f"the body is larger than the limit of {limit} bytes "
                                    "(--max-body)")
        except ValueError:
            raise ApiError(400, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than the limit of {limit} bytes "
                                "(--max-body)")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_record(body: bytes) -> dict[str, Any]:
    """The JSON object of a ``POST /v1/runs`` body (400 malformed, 422 not an object)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not valid UTF-8 (byte {exc.start + 1})") from None
    if not text.strip():
        raise ApiError(400, "the body is empty: send a JSON object (the record)")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, "
                            f"column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(422, f"the record must be a JSON object, got "
                            f"{_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


def flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"`{name}` must be true or false, got `{raw}`")


def number(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"`{name}` must be a whole number, got `{raw}`") from None
    if not low <= value <= high:
        raise ApiError(400, f"`{name}` must be between {low} and {high}, got {value}")
    return value


# ---------------------------------------------------------------- auth

class TokenAuth:
    """``Authorization: Bearer <token>`` on every route but ``/healthz`` and the page's
    static files (401 with a JSON error otherwise)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    def _open(self, path: str) -> bool:
        return path in ("/healthz", "/", "/favicon.ico") or path.startswith("/static/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", []):
            if key == b"authorization":
                given = value
        scheme, _, cred = given.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(cred.strip(), self.token):
            await self.app(scope, receive, send)
            return
        message = "missing bearer token" if not given else "wrong bearer token"
        resp = error_response(401, f"{message}: send `Authorization: Bearer <token>`",
                              {"WWW-Authenticate": 'Bearer realm="cxpar"'})
        await resp(scope, receive, send)


# ---------------------------------------------------------------- the app

def create_app(program: Program, settings: RunSettings,
               options: ServeOptions | None = None) -> Starlette:
    """The ASGI application serving ``program`` (see docs/serve.md)."""
    opts = options or ServeOptions()
    redact = Redactor(secrets_of(settings))

    class Json(SafeJSON):
        pass

    Json.redact = redact
    runs: Runs

    def active() -> int:
        return runs.active

    def queue_depth() -> int:
        return runs.session.queue_depth()

    metrics = Metrics(active=active, queue_depth=queue_depth)

    def run_done(run: Run) -> None:
        res = run.result
        metrics.run_done(run.status, res.duration_ms if res else None,
                         res.errors if res else [])

    runs = Runs(program, settings, provider=opts.provider, keep=opts.keep,
                on_done=run_done, on_event=metrics.event)

    def lookup(run_id: str) -> Run:
        run = runs.runs.get(run_id)
        if run is None:
            raise ApiError(404, f"no run `{run_id}` (finished runs are kept for the last "
                                f"{opts.keep})")
        return run

    def refuse_when_closing() -> None:
        if runs.closing.is_set():
            raise ApiError(503, "the server is shutting down")

    async def post_run(request: Request) -> Response:
        wait = flag(request, "wait", True)
        record = parse_record(await read_body(request, opts.max_body))
        refuse_when_closing()
        run = runs.start(record)
        if not wait:
            return Json({"id": run.id, "status": run.status,
                                 "url": f"/v1/runs/{run.id}",
                                 "events": f"/v1/runs/{run.id}/events"}, 202)
        await runs.wait(run)
        return Json(run.to_dict(), 200)

    async def list_runs(request: Request) -> Response:
        limit = number(request, "limit", 100, 1, 10_000)
        rows = [r.summary() for r in reversed(runs.runs.values())][:limit]
        return Json({"runs": rows, "active": runs.active})

    async def get_run(request: Request) -> Response:
        return Json(lookup(request.path_params["run_id"]).to_dict())

    async def run_events(request: Request) -> Response:
        run = lookup(request.path_params["run_id"])

        async def stream() -> AsyncIterator[str]:
            n = 0
            async for ev in run.follow(runs.closing):
                if ev["type"] == "ping":
                    yield ": ping\n\n"
                    continue
                n += 1
                data = redact(json.dumps(ev, ensure_ascii=False))
                yield f"id: {n}\nevent: {ev['type']}\ndata: {data}\n\n"
            yield "event: end\ndata: {}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    async def post_batch(request: Request) -> Response:
        ordered = flag(request, "ordered", False)
        streams = number(request, "streams", settings.streams, 1, 10_000)
        body = await read_body(request, opts.max_body)
        refuse_when_closing()
        lines = body.split(b"\n")
        session = runs.session

        async def stream() -> AsyncIterator[str]:
            async for line in program.batch(lines, jsonl=True, ordered=ordered,
                                            streams=streams, runtime=session):
                yield redact(line)

        return StreamingResponse(stream(), media_type="application/x-ndjson")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "closing" if runs.closing.is_set() else "ok",
                             "program": program.name, "active": runs.active})

    async def get_metrics(request: Request) -> Response:
        text = redact(metrics.render().decode("utf-8"))
        return Response(text, headers={"Content-Type": CONTENT_TYPE})

    async def get_program(request: Request) -> Response:
        return Json({"name": program.name, "graph": program.graph(),
                             "token_required": opts.token is not None})

    async def index(request: Request) -> Response:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, redact(exc.message))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = {404: f"no route `{request.url.path}`",
                   405: f"`{request.method}` is not allowed on `{request.url.path}`"}.get(
            exc.status_code, str(exc.detail))
        return error_response(exc.status_code, message, dict(exc.headers or {}))

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, f"internal error: {type(exc).__name__} (please report "
                                   "it at the cxpar issue tracker)")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runs.start_session()
        try:
            yield
        finally:
            await runs.shutdown(opts.grace_s)

    app = Starlette(routes=[
        Route("/", index),
        Route("/healthz", healthz),
        Route("/metrics", get_metrics),
        Route("/v1/program", get_program),
        Route("/v1/runs", post_run, methods=["POST"]),
        Route("/v1/runs", list_runs, methods=["GET"]),
        Route("/v1/runs/{run_id}", get_run),
        Route("/v1/runs/{run_id}/events", run_events),
        Route("/v1/batch", post_batch, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ], exception_handlers={ApiError: api_error, HTTPException: http_error,
                           Exception: server_error}, lifespan=lifespan)
    app.state.runs = runs
    app.state.metrics = metrics
    app.add_middleware(TokenAuth, token=opts.token)  # type: ignore[arg-type]
    return app
