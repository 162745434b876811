"""OpenTelemetry export of a run's spans (``--otel``, ``[otel]``; issue 19).

An optional extra: ``pip install 'cxpar[otel]'`` brings the OpenTelemetry SDK and its
OTLP/HTTP (protobuf) exporter. :class:`OtelExport` listens to the run's
:class:`~cxpar.runtime.tracing.Recorder`: every recorded span becomes an OpenTelemetry
span when it starts (so children have their parent) and is ended with its own end time
when it ends; a batch processor sends them to ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the
standard ``OTEL_*`` variables apply; ``[otel] endpoint`` overrides the endpoint) and
:meth:`OtelExport.shutdown` flushes them before the command exits.

One trace per run; in a batch run one trace per stream (each linked to the batch's own
span). Span names and attributes follow the GenAI semantic conventions where they apply
(see docs/observability.md): provider requests are ``CLIENT`` spans named
``{gen_ai.operation.name} {gen_ai.request.model}`` with ``gen_ai.provider.name`` and the
older ``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.response.model`` and — on
exactly one span per request that reported usage — ``gen_ai.usage.input_tokens`` /
``gen_ai.usage.output_tokens``; every span carries ``cxpar.*`` attributes (service,
attempt, outcome, the ``_errors`` kind, ``_parallel`` numbers, handler, event, entity).
Prompts and answers are exported only with ``--otel-content``
(``gen_ai.input.messages`` / ``gen_ai.output.messages``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["OtelExport", "OtelMissing", "INSTALL_HINT", "available", "endpoint_problem", "start"]

INSTALL_HINT = "pip install 'cxpar[otel]'"
#: The sim's name in ``gen_ai.provider.name`` (not a well-known provider).
SIM_PROVIDER = "cxpar.sim"


class OtelMissing(ImportError):
    """``--otel`` without the OpenTelemetry SDK installed."""

    def __init__(self, what: str) -> None:
        super().__init__(f"--otel needs the OpenTelemetry SDK and OTLP exporter ({what} is "
                         f"not installed): {INSTALL_HINT}")


def available() -> str | None:
    """None if the SDK and the OTLP/HTTP exporter import, else the missing module."""
    import importlib.util

    for mod in ("opentelemetry.sdk.trace",
                "opentelemetry.exporter.otlp.proto.http.trace_exporter"):
        try:
            found = importlib.util.find_spec(mod) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return mod
    return None


def collector_url(settings: Any) -> str:
    """Where the spans go: ``[otel] endpoint``, else the standard variables, else the
    OTLP/HTTP default."""
    if settings.otel_endpoint:
        return traces_endpoint(settings.otel_endpoint)
    env = os.environ
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    return traces_endpoint(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://localhost:4318")


def endpoint_problem(settings: Any, env: Mapping[str, str] = os.environ) -> str | None:
    """Why the collector URL taken from the environment cannot work (not an http(s)
    URL), naming the variable; None when it is fine or ``[otel] endpoint`` (checked with
    the settings) takes precedence."""
    if settings.otel_endpoint:
        return None
    for var in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        value = env.get(var)
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                return f"{var} must be an http:// or https:// URL, got `{value}`"
            return None
    return None


class _Delivery(logging.Handler):
    """Counts what the exporter delivered; keeps the SDK's last complaint (its log lines
    are replaced by one warning of ours at the end of the run)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.sent = 0
        self.lost = 0
        self.said: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.said) < 20:
            self.said.append(record.getMessage())

    def reason(self, url: str) -> str:
        """Why the spans were lost: the collector's address unreachable (checked once
        more now), else the first complaint, shortened when it is a well-known one."""
        down = _unreachable(url)
        if down:
            return down
        for why in self.said:
            for needle, short in (("Connection refused", "connection refused"),
                                  ("Name or service not known", "unknown host"),
                                  ("Read timed out", "timed out"),
                                  ("status code", why[:200])):
                if needle in why:
                    return short
        return self.said[0][:200] if self.said else "the collector did not accept them"


def _unreachable(url: str) -> str | None:
    """Why nothing accepts a connection at ``url``'s host and port, or None."""
    import socket
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "localhost", port), timeout=2):
            return None
    except ValueError:
        return "not a valid URL"
    except OSError as exc:
        if isinstance(exc, socket.gaierror):
            return "unknown host"
        if isinstance(exc, TimeoutError):
            return "no answer (timed out)"
        return (exc.strerror or type(exc).__name__).lower()


def _counting(exporter: Any, delivery: _Delivery) -> Any:
    """``exporter`` wrapped so that ``delivery`` counts sent and lost spans; after one
    failed batch the rest are not tried (the SDK already retried it with backoff)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            if delivery.lost:
                delivery.lost += len(spans)
                return SpanExportResult.FAILURE
            result = exporter.export(spans)
            if result == SpanExportResult.SUCCESS:
                delivery.sent += len(spans)
            else:
                delivery.lost += len(spans)
            return result

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            flush = getattr(exporter, "force_flush", None)
            return bool(flush(timeout_millis)) if flush is not None else True

    return Counting()


def traces_endpoint(base: str) -> str:
    """``[otel] endpoint`` (a collector's base URL, like ``OTEL_EXPORTER_OTLP_ENDPOINT``)
    as the traces URL."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


class OtelExport:
    """Recorder listener that mirrors spans into OpenTelemetry and exports them."""

    def __init__(self, settings: Any, provider: Any, *, exporter: Any = None) -> None:
        missing = available()
        if missing is not None:
            raise OtelMissing(missing)
        from opentelemetry import context as otel_context
        from opentelemetry import trace as otel_trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from cxpar import __version__

        attrs: dict[str, Any] = {"service.version": __version__}
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attrs["service.name"] = settings.otel_service or "cxpar"
        self.url = collector_url(settings)
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            exporter = OTLPSpanExporter(
                endpoint=traces_endpoint(settings.otel_endpoint)
                if settings.otel_endpoint else None)
        self.delivery = _Delivery()
        log = logging.getLogger("opentelemetry")
        log.addHandler(self.delivery)
        log.propagate = False  # no SDK tracebacks on stderr: one warning at the end
        self.tracer_provider = TracerProvider(resource=Resource.create(attrs))
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(_counting(exporter, self.delivery)))
        self.tracer = self.tracer_provider.get_tracer("cxpar", __version__)
        self.content = bool(settings.otel_content)
        name = settings.provider.name
        self.provider_name = SIM_PROVIDER if name == "sim" else name
        model = getattr(provider, "model", None)
        self.model = model if isinstance(model, str) and model else settings.run_model()
        self.live: dict[int, Any] = {}
        # imported once here: start/end run for every span of the run
        self._ctx, self._trace = otel_context, otel_trace
        self._base: tuple[int, float] | None = None
        self._closed = False

    # ------------------------------------------------------------------ times
    def _ns(self, t: float) -> int:
        if self._base is None:
            self._base = (time.time_ns(), t)
        epoch, t0 = self._base
        return epoch + int(round((t - t0) * 1e9))

    # ------------------------------------------------------------------ listener
    def start(self, span: Any) -> None:
        """A recorder span started: start its OpenTelemetry span under its parent's."""
        tr = self._trace
        parent = span.parent
        links = []
        if span.kind == "stream" or parent is None:
            ctx = self._ctx.Context()  # a trace of its own
            if parent is not None and parent.id in self.live:
                links.append(tr.Link(self.live[parent.id].get_span_context()))
        else:
            p = self.live.get(parent.id)
            ctx = tr.set_span_in_context(p) if p is not None else self._ctx.Context()
        kind = tr.SpanKind.CLIENT if span.kind in ("attempt", "request") and \
            self._genai(span) else tr.SpanKind.INTERNAL
        self.live[span.id] = self.tracer.start_span(
            self._name(span), context=ctx, kind=kind, links=links,
            start_time=self._ns(span.t0))

    def end(self, span: Any) -> None:
        """A recorder span ended: set its attributes and status, end it."""
        o = self.live.pop(span.id, None)
        if o is None:
            return
        o.update_name(self._name(span))
        o.set_attributes(self._attributes(span))
        if span.err is not None and span.err != "retry":
            tr = self._trace
            o.set_status(tr.Status(tr.StatusCode.ERROR, span.msg or span.err))
        o.end(end_time=self._ns(span.t1))

    def shutdown(self) -> None:
        """End what is still open (an interrupted run) and flush every span."""
        if self._closed:
            return
        self._closed = True
        end = time.time_ns()
        for o in list(self.live.values()):
            o.end(end_time=end)
        self.live.clear()
        self.tracer_provider.shutdown()
        logging.getLogger("opentelemetry").removeHandler(self.delivery)
        d = self.delivery
        if d.lost:
            sys.stderr.write(
                f"warning: --otel: {d.lost} of {d.lost + d.sent} spans were not delivered "
                f"to {self.url}: {d.reason(self.url)} (is a collector listening there? "
                f"OTEL_EXPORTER_OTLP_ENDPOINT or [otel] endpoint)\n")

    # ------------------------------------------------------------------ mapping
    def _genai(self, span: Any) -> bool:
        """Whether the span is (part of) a provider call: GenAI attributes apply."""
        service = span.attrs.get("service")
        return service is not None and service != "await" and not span.attrs.get("plugin")

    def _operation(self, span: Any) -> str:
        return "chat"

    def _name(self, span: Any) -> str:
        if span.kind in ("attempt", "request") and self._genai(span):
            return f"{self._operation(span)} {self.model}" if self.model else \
                self._operation(span)
        return str(span.name)

    def _attributes(self, span: Any) -> dict[str, Any]:
        a: dict[str, Any] = {"cxpar.span.kind": span.kind}
        at = span.attrs
        for key, name in (("service", "cxpar.service"), ("handler", "cxpar.handler"),
                          ("event", "cxpar.event"), ("entity", "cxpar.entity"),
                          ("key", "cxpar.key"), ("stem", "cxpar.stem"),
                          ("caller", "cxpar.caller"), ("index", "cxpar.stream.index")):
            v = at.get(key)
            if v is not None:
                a[name] = v
        if span.kind in ("attempt", "handler") and "attempt" in at:
            a["cxpar.attempt"] = int(at["attempt"])
        if span.kind == "request":
            a["cxpar.request"] = int(at.get("request", 1))
        if "queued_ms" in at:
            a["cxpar.queued_ms"] = float(at["queued_ms"])
        par = at.get("parallel") if span.kind == "call" else \
            (at if span.kind == "join" else None)
        if par:
            for k in ("branches", "succeeded", "failed", "wall_ms", "critical_ms"):
                if k in par:
                    a[f"cxpar.parallel.{k}"] = par[k]
        a["cxpar.outcome"] = "ok" if span.err is None else span.err
        if span.err is not None:
            a["cxpar.error.type"] = span.err
            if span.msg:
                a["cxpar.error.message"] = span.msg
        if not span.awaited:
            a["cxpar.emitted"] = True
        if self._genai(span) and span.kind in ("call", "attempt", "request"):
            a["gen_ai.operation.name"] = self._operation(span)
            a["gen_ai.provider.name"] = self.provider_name
            a["gen_ai.system"] = self.provider_name
            if self.model:
                a["gen_ai.request.model"] = self.model
        u = span.usage
        if u is not None:  # one span per request that reported usage
            a["gen_ai.usage.input_tokens"] = int(u.input_tokens)
            a["gen_ai.usage.output_tokens"] = int(u.output_tokens)
            if u.model:
                a["gen_ai.response.model"] = u.model
            if u.estimated:
                a["cxpar.usage.estimated"] = True
            if span.cost is not None:
                a["cxpar.cost_usd"] = float(span.cost)
        if self.content:
            if "input" in at:
                a["gen_ai.input.messages"] = json.dumps(
                    [{"role": "user", "parts": [{"type": "text", "content": at["input"]}]}],
                    ensure_ascii=False)
            if "output" in at:
                a["gen_ai.output.messages"] = json.dumps(
                    [{"role": "assistant", "parts": [{"type": "text",
                                                      "content": at["output"]}]}],
                    ensure_ascii=False)
        return a


def start(recorder: Any, settings: Any, provider: Any, *, exporter: Any = None) -> OtelExport:
    """Export ``recorder``'s spans (raises :class:`OtelMissing` without the SDK); the
    recorder's :meth:`~cxpar.runtime.tracing.Recorder.close` flushes them. ``exporter``:
    an OpenTelemetry span exporter instead of OTLP/HTTP (benchmarks, embedding)."""
    import atexit

    exp = OtelExport(settings, provider, exporter=exporter)
    recorder.content = exp.content
    recorder.listen(exp.end, on_start=exp.start)
    recorder.on_close.append(exp.shutdown)
    atexit.register(exp.shutdown)  # any other way out of the process flushes too
    return exp
