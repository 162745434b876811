"""``--provider openai``: any OpenAI-compatible chat-completions endpoint (SPEC §6.3).

Works with Ollama (``http://localhost:11434/v1``), vLLM, llama.cpp's server, LM Studio
and hosted APIs. One shared :class:`httpx.AsyncClient` (connection pool; HTTP/2 when the
``h2`` package is importable, else HTTP/1.1) per event loop.

Service mapping (the answer is always the reply's ``choices[0].message.content``):

- ``think``, ``infer``, ``adapt``, ``iam``, ``execute`` and provider-handled plug-in
  names: one chat completion. The user message is the ``prompt`` prop (a string as is,
  anything else as one-line JSON), else the whole request as JSON; the other props are
  appended as a JSON context block. ``execute`` only asks the model: nothing runs locally.
- ``is`` / ``not``: a yes/no question with a constrained reply. A boolean ``condition``
  prop (top level or in ``data``) decides without a request, as in the sim. Otherwise
  the reply's first word decides: ``yes``/``true`` → true, ``no``/``false`` → false
  (case-insensitive, surrounding punctuation ignored); anything else fails the call
  with a ``provider`` error quoting the reply. ``result`` is the boolean.
- ``learn``: no request; the request is stored in the calling entity's memory (the
  program's memory at top level) and the answer is the memory's new size. Later calls
  from that entity include its memory as context (the last 20 items).
- ``await`` is a runtime timer and never reaches a provider.

Transport retries (like the official SDKs, independent of CX ``retries``): a
connection error, a timeout of the request itself, HTTP 408/409/429 or 5xx is retried
up to ``max_retries`` times (default 2; ``[provider] max_retries``) with exponential
backoff (0.5 s, 1 s, … at most 8 s, with jitter), waiting ``Retry-After`` instead when
the server sends one of at most 60 s, and never past the call's deadline. Each retry is
counted in ``--stats`` (``transport retries``) and, being a request the server counts,
waits for and uses its endpoint's ``rpm``/``tpm`` room like any request
(``CallContext.resend``).

Failures raise :class:`ProviderError` with the HTTP status and a short excerpt of the
body; what a transport retry could fix stays retryable for the call's own ``retries``
(``Retry-After`` on 429/503 is passed to the coordinator's backoff), everything else is
not. A redirect (3xx) is reported as such and never followed; a body over
``max_response_bytes`` (default 16 MiB) is refused while it arrives.

The API key (``CXPAR_API_KEY``) is trimmed and validated, sent only as
``Authorization: Bearer …`` and redacted, in every escaped form, from every message,
repr, trace and stat; a base URL with user info is refused (see
:mod:`cxpar.runtime.providers.secrets`).
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import json
import math
import random
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from ..values import to_json
from .base import CallContext, ProviderError, ToolRequest, Usage, condition_of, request_text
from .chat import StreamReader, history_messages, rate_limit_pause, reply, request_options
from .secrets import Redactor, check_endpoint, clean_api_key, shown_url

__all__ = ["OpenAIProvider", "TransportError", "parse_yes_no", "parse_retry_after",
           "parse_usage", "MEMORY_ITEMS", "MAX_RESPONSE_BYTES", "MAX_RETRIES"]

#: How many of an entity's latest ``learn`` items are sent as context.
MEMORY_ITEMS = 20
#: Longest ``Retry-After`` honoured (s); a longer one fails the call without a retry.
MAX_RETRY_AFTER_S = 60.0
#: Characters of an error body quoted in a failure message.
BODY_EXCERPT = 200
#: ``max_tokens`` of a yes/no question (the reply is constrained to one word).
YES_NO_MAX_TOKENS = 16
#: Per-request timeout when the call has no deadline (s).
DEFAULT_REQUEST_TIMEOUT_S = 120.0
#: Largest response body accepted (bytes); larger ones fail the call as they arrive.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
#: Transport retries of one request by default (connection errors, 408/409/429/5xx).
MAX_RETRIES = 2
#: Backoff of transport retries: first delay and cap (s), as the official SDKs.
RETRY_BASE_S = 0.5
RETRY_MAX_S = 8.0

_SYSTEM = ("You are the `{service}` service of a CX workflow program. "
           "Answer the request directly and concisely.")
_SYSTEM_YES_NO = ("You are the `{service}` decision service of a CX workflow program. "
                  "Answer the question with exactly one word: yes or no.")
_YES = frozenset({"yes", "true"})
_NO = frozenset({"no", "false"})
_RETRY_STATUS = frozenset({408, 409, 429})


class TransportError(ProviderError):
    """A failure a transport retry may fix: no connection, a request timeout, HTTP
    408/409/429 or 5xx (subject to ``Retry-After``)."""


def parse_yes_no(text: str) -> bool:
    """The decision in a yes/no reply: its first word, ``yes``/``true`` or ``no``/``false``.

    Case-insensitive; punctuation around the word is ignored (``"Yes."``, ``"**no**"``).
    Raises :class:`ProviderError` (not retryable) for anything else.
    """
    words = text.strip().split(None, 1)
    first = words[0].strip(".,;:!?\"'*`()[]{}<>").lower() if words else ""
    if first in _YES:
        return True
    if first in _NO:
        return False
    shown = " ".join(text.split())
    if len(shown) > 60:
        shown = shown[:60] + "…"
    raise ProviderError(f"ambiguous yes/no answer {shown!r} (expected the first word to be "
                        "yes, no, true or false)", retryable=False)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(secs) or math.isinf(secs):
        return None
    return max(0.0, secs)


def _count(value: Any) -> int | None:
    if type(value) is int and value >= 0:
        return value
    if type(value) is float and value >= 0 and value.is_integer():
        return int(value)
    return None


def parse_usage(data: Any, model: str | None = None) -> Usage | None:
    """The :class:`Usage` of a chat-completions reply: ``usage.prompt_tokens`` /
    ``completion_tokens`` (``input_tokens``/``output_tokens`` also accepted), the reply's
    ``model`` (else ``model``); None when the reply carries no usable usage."""
    if not isinstance(data, dict):
        return None
    u = data.get("usage")
    if not isinstance(u, dict):
        return None
    tin = _count(u.get("prompt_tokens", u.get("input_tokens")))
    tout = _count(u.get("completion_tokens", u.get("output_tokens")))
    if tin is None and tout is None:
        return None
    answered = data.get("model")
    return Usage(tin or 0, tout or 0,
                 answered if isinstance(answered, str) and answered else model)


def _retry_after_header(headers: httpx.Headers) -> float | None:
    """``retry-after-ms`` (OpenAI's) or ``Retry-After`` as seconds, None if absent."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value):
            return max(0.0, value)
    return parse_retry_after(headers.get("retry-after"))


class OpenAIProvider:
    """Chat completions against ``base_url`` (``…/v1``) with ``model``.

    ``api_key`` (from ``CXPAR_API_KEY``, read by :mod:`cxpar.plugins`) is trimmed and
    validated, and never stored anywhere it could be printed. ``http2``: True, False or
    None (auto: when the ``h2`` package is importable). ``timeout_s`` caps every request
    (default: the call's ``timeout``, which the coordinator enforces anyway).
    ``max_retries``: transport retries per request; ``max_response_bytes``: the body cap.
    Raises ValueError for a base URL with user info or a key no header can carry.
    """

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 timeout_s: float | None = None, max_connections: int = 100,
                 http2: bool | None = None, temperature: float | None = None,
                 max_tokens: int | None = None,
                 headers: Mapping[str, str] | None = None,
                 max_retries: int = MAX_RETRIES,
                 max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        if not base_url:
            raise ValueError("the openai provider needs a base URL")
        check_endpoint(base_url)
        api_key = clean_api_key(api_key)
        if max_retries < 0 or max_response_bytes < 1:
            raise ValueError("max_retries must be >= 0 and max_response_bytes >= 1")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.shown_url = shown_url(self.url)
        self.max_retries = max_retries
        self.max_response_bytes = max_response_bytes
        #: Transport retries made so far (also counted per service in ``--stats``).
        self.transport_retries = 0
        self.model = model
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.http2 = (importlib.util.find_spec("h2") is not None) if http2 is None else http2
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": "cxpar"}
        if headers:
            self._headers.update({str(k): str(v) for k, v in headers.items()})
        self.__key = api_key
        self._redact = Redactor(api_key)
        if self.__key:
            self._headers["Authorization"] = f"Bearer {self.__key}"
        self.memory: list[Any] = []
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncIterator[None] | None = None
        self.requests = 0

    def __repr__(self) -> str:
        key = ", api_key=***" if self.__key else ""
        return f"OpenAIProvider(base_url={self.shown_url!r}, model={self.model!r}{key})"

    # ------------------------------------------------------------------ client
    def _error(self, message: str, cls: type[ProviderError] = ProviderError,
               **kw: Any) -> ProviderError:
        """A failure whose message can never carry the key."""
        return cls(self._redact(message), **kw)

    async def client(self) -> httpx.AsyncClient:
        """The shared client of the running loop (created on first use)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop or self._client.is_closed:
            limits = httpx.Limits(max_connections=self.max_connections,
                                  max_keepalive_connections=self.max_connections)
            self._client = httpx.AsyncClient(http2=self.http2, limits=limits,
                                             headers=self._headers, follow_redirects=False,
                                             timeout=self.timeout_s or DEFAULT_REQUEST_TIMEOUT_S)
            self._client_loop = loop
            # Close the pool when the loop shuts down: asyncio.Runner.close() calls
            # loop.shutdown_asyncgens(), which finalizes this generator.
            self._closer = self._close_at_shutdown(self._client)
            await self._closer.__anext__()
        return self._client

    @staticmethod
    async def _close_at_shutdown(client: httpx.AsyncClient) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (also done automatically when the loop shuts down)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ calls
    async def call(self, service: str, request: dict[str, Any], context: CallContext) -> Any:
        if service == "learn":
            mem = self._memory(context)
            mem.append(dict(request))
            return float(len(mem))
        yes_no = service in ("is", "not")
        if yes_no:
            decided = condition_of(request)
            if decided is not None:
                return decided
        messages = self.messages(service, request, context)
        content = await self.complete(messages, context, max_tokens=YES_NO_MAX_TOKENS if yes_no else None)
        if yes_no and isinstance(content, str):
            return parse_yes_no(content)
        return content

    def _memory(self, context: CallContext) -> list[Any]:
        caller = context.caller
        mem = getattr(caller, "memory", None) if caller is not None else None
        return mem if isinstance(mem, list) else self.memory

    def messages(self, service: str, request: Mapping[str, Any],
                 context: CallContext) -> list[dict[str, str]]:
        """The chat messages for one call (see the module docstring)."""
        yes_no = service in ("is", "not")
        system = (_SYSTEM_YES_NO if yes_no else _SYSTEM).format(service=service)
        msgs = [{"role": "system", "content": system}]
        memory = self._memory(context)
        if memory:
            recent = memory[-MEMORY_ITEMS:]
            msgs.append({"role": "system", "content": "What you have learned so far "
                         "(JSON, oldest first):\n" + "\n".join(to_json(m) for m in recent)})
        text = request_text(request)
        if yes_no:
            text += "\n\nAnswer yes or no."
        msgs.append({"role": "user", "content": text})
        if context.history:
            msgs.extend(history_messages(context.history))
        return msgs

    async def complete(self, messages: list[dict[str, Any]], context: CallContext | None = None,
                       *, max_tokens: int | None = None) -> str | ToolRequest:
        """POST one chat completion (with transport retries); the reply's message content
        (a :class:`ToolRequest` when the model calls tools). The call's ``model``,
        ``schema`` and ``tools`` (``context``) shape the body; with ``context.on_chunk``
        the reply is streamed."""
        model = context.model if context is not None and context.model else self.model
        body: dict[str, Any] = {"model": model, "messages": messages, "stream": False}
        if context is not None:
            body.update(request_options(context.schema, context.tools))
            if context.on_chunk is not None:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        mt = max_tokens if max_tokens is not None else self.max_tokens
        if mt is not None:
            body["max_tokens"] = mt
        client = await self.client()
        retry = 0
        while True:
            try:
                return await self._post(client, body, context)
            except TransportError as exc:
                if exc.retry_after and context is not None and context.pause is not None:
                    context.pause(exc.retry_after)  # Retry-After holds the whole endpoint
                delay = self._retry_delay(exc, retry, context)
                if delay is None:
                    raise
                reason = str(exc)
            retry += 1
            self.transport_retries += 1
            await asyncio.sleep(delay)
            if context is not None:
                if context.resend is not None:  # the endpoint's rpm/tpm count it too
                    await context.resend()
                context.report_retry(reason)  # counted in --stats retries; a span per request

    def _retry_delay(self, exc: ProviderError, retry: int,
                     context: CallContext | None) -> float | None:
        """Seconds to wait before transport retry ``retry + 1``; None: do not retry."""
        if retry >= self.max_retries or not exc.retryable:
            return None
        if exc.retry_after is not None:
            delay = exc.retry_after
        else:
            delay = min(RETRY_BASE_S * 2 ** retry, RETRY_MAX_S) * (1 - 0.25 * random.random())
        if context is not None and context.deadline is not None \
                and asyncio.get_running_loop().time() + delay >= context.deadline:
            return None  # the call's own timeout comes first: report this failure
        return delay

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any],
                    context: CallContext | None) -> str | ToolRequest:
        """One HTTP request; its body is read up to ``max_response_bytes``."""
        timeout: float | None = self.timeout_s
        if context is not None and context.deadline is not None:
            # The coordinator cancels at the deadline; httpx's own timeout is a backstop.
            left = context.deadline - asyncio.get_running_loop().time() + 1.0
            timeout = max(0.5, left) if timeout is None else min(timeout, max(0.5, left))
        self.requests += 1
        try:
            if body["stream"]:
                return await self._stream(client, body, timeout, context)
            async with client.stream("POST", self.url, json=body,
                                     timeout=timeout or DEFAULT_REQUEST_TIMEOUT_S) as resp:
                self._pause_if_asked(resp, context)
                raw = await self._read(resp)
        except httpx.TimeoutException as exc:
            raise self._error(f"request to {self.shown_url} timed out "
                              f"({type(exc).__name__})", TransportError) from None
        except httpx.TransportError as exc:
            detail = str(exc) or type(exc).__name__
            raise self._error(f"cannot reach {self.shown_url}: {detail}",
                              TransportError) from None
        except httpx.HTTPError as exc:  # pragma: no cover - other client errors
            raise self._error(f"request to {self.shown_url} failed: "
                              f"{str(exc) or type(exc).__name__}", retryable=False) from None
        return self._content(resp, raw, context)

    async def _read(self, resp: httpx.Response) -> bytes:
        """The body, refused (not retried) as soon as it is larger than the cap."""
        cap = self.max_response_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_big(resp, int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise self._too_big(resp, None)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, resp: httpx.Response, size: int | None) -> ProviderError:
        got = f"{size} bytes" if size is not None else "more than that"
        return self._error(
            f"response from {self.shown_url} (HTTP {resp.status_code}) is larger than "
            f"{_size(self.max_response_bytes)}: {got} (set [provider] max_response_mb to "
            "accept more)", retryable=False)

    async def _stream(self, client: httpx.AsyncClient, body: dict[str, Any],
                      timeout: float | None, context: CallContext | None) -> str | ToolRequest:
        """One streamed request: each content delta goes to ``context.on_chunk`` as it
        arrives (the stream, too, is refused beyond ``max_response_bytes``)."""
        reader = StreamReader(context.on_chunk if context is not None else None,
                              self.shown_url)
        async with client.stream("POST", self.url, json=body,
                                 timeout=timeout or DEFAULT_REQUEST_TIMEOUT_S) as resp:
            self._pause_if_asked(resp, context)
            if resp.status_code >= 300 or \
                    "text/event-stream" not in resp.headers.get("content-type", ""):
                # an error, or a server that ignores `stream`: one JSON reply
                return self._content(resp, await self._read(resp), context)
            cap, size = self.max_response_bytes, 0
            async for line in resp.aiter_lines():
                size += len(line) + 1
                if size > cap:
                    raise self._too_big(resp, None)
                reader.feed_line(line)
            reader.close()
        if context is not None and reader.usage is not None:
            usage = parse_usage(reader.usage, context.model or self.model)
            if usage is not None:
                context.report_usage(usage)
        return reader.result()

    @staticmethod
    def _pause_if_asked(resp: httpx.Response, context: CallContext | None) -> None:
        """``x-ratelimit-remaining-*: 0``: the whole endpoint pauses until the reset."""
        if context is None or context.pause is None:
            return
        pause = rate_limit_pause(resp.headers)
        if pause:
            context.pause(pause)

    def _content(self, resp: httpx.Response, raw: bytes,
                 context: CallContext | None = None) -> str | ToolRequest:
        status = resp.status_code
        if 300 <= status < 400:
            where = resp.headers.get("location")
            to = f" to {shown_url(where)}" if where else ""
            raise self._error(
                f"HTTP {status} redirect from {self.shown_url}{to}: cxpar does not follow "
                "redirects (they could send the key elsewhere); use the final address as "
                "the base URL", retryable=False)
        if status >= 400:
            raise self._http_error(resp, raw)
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise self._error(f"malformed JSON from {self.shown_url} (HTTP {status}): "
                              f"{self._excerpt(resp, raw)}", retryable=False) from None
        if context is not None:
            usage = parse_usage(data, context.model or self.model)
            if usage is not None:  # reported before any check: the tokens were spent
                context.report_usage(usage)
        try:
            message = data["choices"][0]["message"]
            if not isinstance(message, dict) or ("content" not in message
                                                 and "tool_calls" not in message):
                raise KeyError("content")
        except (KeyError, IndexError, TypeError):
            raise self._error(f"unexpected reply from {self.shown_url}: no "
                              f"choices[0].message.content in {self._excerpt(resp, raw)}",
                              retryable=False) from None
        return reply(message, self.shown_url)

    def _excerpt(self, resp: httpx.Response, raw: bytes) -> str:
        try:
            text = raw.decode(resp.encoding or "utf-8", "replace")
        except LookupError:
            text = repr(raw[:BODY_EXCERPT])
        text = " ".join(self._redact(text).split())
        if not text:
            return "(empty body)"
        if len(text) > BODY_EXCERPT:
            text = text[:BODY_EXCERPT] + "…"
        return repr(text)

    def _http_error(self, resp: httpx.Response, raw: bytes) -> ProviderError:
        status = resp.status_code
        reason = resp.reason_phrase or ""
        msg = f"HTTP {status}{' ' + reason if reason else ''} from {self.shown_url}: " \
              f"{self._excerpt(resp, raw)}"
        retryable = status in _RETRY_STATUS or status >= 500
        retry_after = None
        if retryable:
            retry_after = _retry_after_header(resp.headers)
            if retry_after is not None:
                if retry_after > MAX_RETRY_AFTER_S:
                    retryable = False
                    msg += f" (Retry-After {retry_after:g} s is longer than " \
                           f"{MAX_RETRY_AFTER_S:g} s: not retried)"
                else:
                    msg += f" (Retry-After {retry_after:g} s)"
        return self._error(msg, TransportError if retryable else ProviderError,
                           retryable=retryable, retry_after=retry_after)


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n} bytes"
