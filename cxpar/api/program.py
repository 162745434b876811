"""``cxpar.load`` and :class:`Program`: compile once, run many isolated streams."""

from __future__ import annotations

import asyncio
import json
import os
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cxpar.runtime.settings import ProviderSettings, RunSettings

from .result import RunResult
from .session import Runtime

if TYPE_CHECKING:
    from cxpar.diagnostics.model import Diagnostic
    from cxpar.span import SourceFile

__all__ = ["CompileError", "Program", "load"]

#: A callback that receives each live event of a run (see :meth:`Program.run`).
Listener = Callable[[dict[str, Any]], None]


class CompileError(Exception):
    """The program has errors: ``diagnostics`` holds them (and any warnings); ``str()``
    is the rendered report, as ``cxpar check`` prints it (without colour)."""

    def __init__(self, name: str, diagnostics: list[Diagnostic],
                 source: SourceFile | None) -> None:
        self.name = name
        self.diagnostics = diagnostics
        self.source = source
        super().__init__(render_diagnostics(diagnostics, source))

    @property
    def errors(self) -> list[Diagnostic]:
        """The diagnostics that are errors."""
        return [d for d in self.diagnostics if d.is_error]


def render_diagnostics(diagnostics: list[Diagnostic], source: SourceFile | None) -> str:
    """Diagnostics as text with their source lines (rustc layout, no colour)."""
    from cxpar.diagnostics.render import render_text

    lines = source.text.split("\n") if source is not None else []

    def source_line(_file: str, line: int) -> str:
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    return "\n".join(render_text(d, source_line, False) for d in diagnostics)


def _is_path(value: str | os.PathLike[str]) -> bool:
    if not isinstance(value, str):
        return True
    return "\n" not in value and (value.endswith(".cx") or os.path.isfile(value))


def load(path_or_source: str | os.PathLike[str], *, name: str | None = None,
         backend: str = "python", services: Mapping[str, str] | None = None,
         explain: bool = False) -> Program:
    """Compile a CX program once; raise :class:`CompileError` if it has errors.

    ``path_or_source``: a path (a :class:`os.PathLike`, or a one-line string ending in
    ``.cx`` or naming an existing file) or the CX source text itself (``name`` is then
    the file name shown in messages, default ``<source>``). ``backend``: ``python`` or
    ``llvm`` (the dispatch layer, as ``--backend``); ``services``: extra service names
    the checker accepts (``name → event stem``, as ``[services]`` in ``cxpar.toml``);
    ``explain``: with ``llvm``, report which loops run natively on stderr.
    ``FileNotFoundError`` / ``UnicodeDecodeError`` problems reading the file are
    diagnostics too (a :class:`CompileError`).
    """
    from cxpar.driver import front_end, front_end_source
    from cxpar.span import SourceFile

    _check_load_args(path_or_source, name, backend, services)
    extra = dict(services or {})
    if _is_path(path_or_source):
        shown = name if name is not None else os.fspath(path_or_source)
        fe = front_end(Path(path_or_source), shown, extra_services=extra)
    else:
        source = SourceFile(name or "<source>", str(path_or_source))
        fe = front_end_source(source, extra_services=extra)
    if fe.has_errors or fe.compilation is None:
        raise CompileError(fe.name, list(fe.diagnostics), fe.source)
    from cxpar.codegen.module import compile_program

    comp = fe.compilation
    if backend == "llvm":
        from cxpar.codegen.llvm import backend as llvm_backend

        compiled, factory = llvm_backend.compile_native(comp, compile_program,
                                                        explain=explain)
    elif backend == "python":
        compiled = compile_program(comp)
        factory = compiled.program
    else:
        raise ValueError(f"backend must be python or llvm, got {backend!r}")
    assert fe.source is not None
    return Program(name=fe.name, source=fe.source, factory=factory, spans=compiled.spans,
                   sources=compiled.sources, compilation=comp,
                   diagnostics=list(fe.diagnostics))


def _check_load_args(path_or_source: object, name: object, backend: object,
                     services: object) -> None:
    """TypeError for :func:`load` arguments of the wrong type, naming the argument."""
    if not isinstance(path_or_source, (str, os.PathLike)):
        raise TypeError("cxpar.load() takes a path (str or pathlib.Path) or CX source "
                        f"text, got {type(path_or_source).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name= must be a string, got {type(name).__name__}")
    if not isinstance(backend, str):
        raise TypeError(f"backend= must be 'python' or 'llvm', got {type(backend).__name__}")
    if services is not None and not (
            isinstance(services, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in services.items())):
        raise TypeError("services= must be a mapping of service name to event stem "
                        "(str to str), e.g. {\"summarize\": \"summarizing\"}")


@dataclass(eq=False)
class Program:
    """A compiled CX program (made by :func:`load`). Run it as often as you like, also
    concurrently: every run is an isolated stream with its own globals, entities and
    errors (``cxpar run --input`` runs each record the same way)."""

    name: str
    source: SourceFile
    factory: Callable[[Any], Any] = field(repr=False)
    spans: list[Any] = field(repr=False)
    sources: dict[str, str] = field(repr=False)
    compilation: Any = field(repr=False)
    #: Warnings the checker reported (errors raise :class:`CompileError` instead).
    diagnostics: list[Diagnostic] = field(default_factory=list, repr=False)
    _sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Runtime] = \
        field(default_factory=weakref.WeakKeyDictionary, repr=False)

    # ------------------------------------------------------------ the graph
    def graph(self, *, record: bool = True) -> dict[str, Any]:
        """The stream execution graph as data (the ``cxpar graph --format json``
        document). ``record``: of a run with a record — ``input.record`` is delivered
        after ``system.start`` — rather than of ``cxpar run FILE``."""
        from cxpar.analysis.graph import build_graph
        from cxpar.analysis.graph_format import to_data

        comp = self.compilation
        if record:
            return to_data(comp.graph)
        return to_data(build_graph(comp.info, comp.program, comp.latency, inputs=()))

    def critical_services(self) -> list[str]:
        """The services on the static critical path of the stream execution graph."""
        g = self.compilation.graph
        if g is None:
            return []
        return [g.nodes[i].label for i in g.critical_path if g.nodes[i].kind == "call"]

    # ------------------------------------------------------------ settings
    def session(self) -> Runtime:
        """This program's default session for the running loop (made on first use)."""
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None:
            session = self._sessions[loop] = Runtime()
        return session

    # ------------------------------------------------------------ running
    async def run(self, record: Any = None, settings: RunSettings | None = None, *,
                  runtime: Runtime | None = None, listener: Listener | None = None,
                  run_id: str | None = None, **overrides: Any) -> RunResult:
        """Run one isolated stream and return its :class:`RunResult`.

        The top level runs, then ``system.start`` is emitted and — unless ``record`` is
        None — ``input.record`` with ``record`` (any JSON value) as its payload; the run
        ends when no handler is left running, or with a ``timeout`` error after
        ``settings.timeout_ms``. Runtime errors end up in the result's ``errors``, never
        raised.

        ``settings`` (default: the session's) are the :class:`~cxpar.RunSettings` the
        CLI resolves; keyword ``overrides`` build a copy (``seed=3``, ``timeout_ms=500``,
        ``clock="virtual"``, ``latency={"think": 10}``, ``provider="sim"`` or a
        :class:`~cxpar.runtime.settings.ProviderSettings`). ``runtime``: the session
        whose provider, limiter and breakers the run shares (default: one per program
        and event loop). A run whose provider, sim, limit, breaker or clock settings
        differ from its session's gets private ones for that run. A virtual-clock run
        on a real-time loop runs on a virtual loop of its own in a worker thread.
        ``listener(event)``: called with each live event (``emit``, ``call.start``,
        ``call.end``, ``branch``, ``join``, ``print``, ``output``, ``error``) as it happens.
        ``run_id``: the result's id (default: the session's next, ``r1``, ``r2``, …).
        """
        from cxpar.runtime.clock import VirtualEventLoop

        session = runtime if runtime is not None else self.session()
        s = _settings(settings if settings is not None else session.settings, overrides)
        record = _plain(record)
        loop = asyncio.get_running_loop()
        if s.clock == "virtual" and not isinstance(loop, VirtualEventLoop):
            return await asyncio.to_thread(self._run_on_new_loop, record, s, listener,
                                           run_id or session.next_id())
        from .execute import execute

        return await execute(self, record, s, session, listener=listener, run_id=run_id)

    def run_sync(self, record: Any = None, settings: RunSettings | None = None, *,
                 listener: Listener | None = None, **overrides: Any) -> RunResult:
        """:meth:`run` from synchronous code: on a new event loop of the settings' clock
        (with a session of its own). Not from inside a running event loop."""
        s = _settings(settings if settings is not None else RunSettings(), overrides)
        return self._run_on_new_loop(_plain(record), s, listener, "r1")

    def _run_on_new_loop(self, record: Any, s: RunSettings, listener: Listener | None,
                         run_id: str) -> RunResult:
        from cxpar.runtime.clock import new_loop

        from .execute import execute

        loop = new_loop(s.clock, guard_s=s.guard_s)

        async def go() -> RunResult:
            async with Runtime(s) as session:
                return await execute(self, record, s, session, listener=listener,
                                     run_id=run_id)

        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            return runner.run(go())

    async def batch(self, records: Iterable[Any] | AsyncIterable[Any],
                    settings: RunSettings | None = None, *, streams: int | None = None,
                    ordered: bool = False, jsonl: bool = False,
                    runtime: Runtime | None = None, **overrides: Any) -> AsyncIterator[str]:
        """Run one isolated stream per record; yield result lines as ``cxpar run
        --input`` writes them (``{"index": i, "output": …}`` per output, ``"output":
        null`` for none, ``{"index": i, "error": …}`` for a failed stream), each a JSON
        text ending in a newline.

        ``streams``: records in flight at once (default ``settings.streams``);
        ``ordered``: yield in input order (default: as streams finish); ``jsonl``: the
        records are JSON text lines (``str``/``bytes``; blank lines skipped, a malformed
        line gives an ``input`` error line). Stream ``i`` is seeded as in ``cxpar run
        --input``, so the lines are the CLI's.
        """
        from .execute import batch_lines

        session = runtime if runtime is not None else self.session()
        s = _settings(settings if settings is not None else session.settings, overrides)
        n = streams if streams is not None else s.streams
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"streams must be a whole number >= 1, got {n!r}")
        async for line in batch_lines(self, records, s, session, streams=n,
                                      ordered=ordered, jsonl=jsonl):
            yield line

    # ------------------------------------------------------------ the command line
    def main(self, settings: RunSettings | None = None, *, provider: Any = None,
             stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
        """Run as ``cxpar run`` does and return its exit code (0, 3, 130): the program
        on a loop of its own with output on ``stdout``/``stderr`` — or, when
        ``settings.input`` is set, a batch over that JSONL file — with ``--stats``,
        ``--trace``, ``--dashboard``, ``--journal`` and ``--replay`` as the settings say.

        Raises :class:`cxpar.journal.JournalError` when the journal cannot be used and
        :class:`cxpar.runtime.batchfile.BatchFileError` when the batch output cannot be
        written (before anything runs).
        """
        s = RunSettings.check(settings)
        if s.journal is None and s.replay is None:
            return self._main(s, provider, stdout, stderr)
        from cxpar.journal import run_with_journal

        if provider is None:
            from .session import make_provider

            provider = make_provider(s)
        return run_with_journal(s, provider,
                                lambda prov: self._main(s, prov, stdout, stderr),
                                program=self.name, source=self.source.text,
                                kind="run" if s.input is None else "batch", stderr=stderr)

    def _main(self, s: RunSettings, provider: Any, stdout: IO[str] | None,
              stderr: IO[str] | None) -> int:
        critical = self.critical_services() if s.dashboard else []
        if s.input is not None:
            from cxpar.runtime.streams import run_batch

            return run_batch(self.factory, self.spans, self.sources, s, provider=provider,
                             stdout=stdout, stderr=stderr, critical=critical)
        from cxpar.runtime.standalone import run_factory

        return run_factory(self.factory, self.spans, self.sources, s, provider=provider,
                           stdout=stdout, stderr=stderr, critical=critical)


def _settings(base: RunSettings, overrides: Mapping[str, Any]) -> RunSettings:
    """``base`` with ``overrides`` (``provider`` may be a name or ProviderSettings)."""
    RunSettings.check(base)
    if not overrides:
        return base
    changes = dict(overrides)
    prov = changes.get("provider")
    if isinstance(prov, str):
        changes["provider"] = ProviderSettings(name=prov)
    elif prov is not None and not isinstance(prov, ProviderSettings):
        raise TypeError("provider= must be a provider name or a ProviderSettings; pass a "
                        "provider object to cxpar.Runtime(provider=...)")
    return base.replace(**changes)


def _plain(record: Any) -> Any:
    """A private copy of ``record`` as CX data (numbers as floats); TypeError/ValueError
    for what JSON cannot hold."""
    if record is None:
        return None
    try:
        text = json.dumps(record, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"the record must be JSON data: {exc}") from None
    return json.loads(text, parse_int=float)
