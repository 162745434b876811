"""REPL state across entries: one runtime, one event loop, accumulated declarations.

Each entry is parsed on its own (file name ``<repl-N>``, registered in ``linecache``) and
analysed together with the *declarations* of earlier entries (entities, top-level ``on``
handlers, and top-level ``var``s as initialiser-less stubs), so names resolve exactly as
in one program. Only the entry itself is compiled (``generate(…, repl=True)``) and run on
the session's long-lived :class:`~cxpar.runtime.scheduler.Runtime`; globals live on the
runtime's REPL namespace. See docs/decisions.md ("REPL: one program, many entries").
"""

from __future__ import annotations

import ast as py
import asyncio
import contextlib
import linecache
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from cxpar.ast import nodes as n
from cxpar.diagnostics.model import Diagnostic
from cxpar.runtime.errors import Stopped
from cxpar.runtime.settings import ProviderSettings, RunSettings, SettingsError
from cxpar.span import SourceFile

#: The variable holding the last echoed value (as in Python's interactive mode).
LAST = "_"

#: Warnings that only make sense for a whole program, not for one entry at a time.
_QUIET_CODES = {"CX004", "CX404"}

HELP = """\
Enter CX statements and declarations; an entry ends when its brackets balance and it
ends with `;` or `}` (an empty line also ends a balanced entry). A bare expression
prints its value. Declarations, variables, entities and subscriptions persist.

Commands:
  :help                    this text
  :ast EXPR-OR-STMT        show the syntax tree of a snippet
  :graph [FORMAT]          the stream execution graph of everything entered so far
                           (FORMAT: text, mermaid, dot, json)
  :load FILE               run a CX file in this session (then `system.start`)
  :reset                   forget everything; a fresh runtime
  :clock [real|virtual]    show or switch the clock (state is kept)
  :provider [sim] [seed=N] [latency=think=100,...] [fail-rate=X] [timeout-rate=X]
                           show or configure the AI provider
  :stats                   per service/handler statistics so far
  :journal [PATH|off]      show the journal, record and serve provider calls with the
                           journal at PATH (as `cxpar run --journal`), or stop
  :quit                    leave (also Ctrl-D)
Ctrl-C cancels a running entry (and everything it started) and returns to the prompt."""


# --------------------------------------------------------------------------- completion

_TOKEN = re.compile(r'//[^\n]*|/\*.*?(\*/|\Z)|"(\\.|[^"\\\n])*("|$)|[()\[\]{}]|[^\s/"()\[\]{}]+|/',
                    re.S | re.M)


def _scan(text: str) -> tuple[int, bool, str]:
    """``(bracket depth, inside an open block comment, last significant token)``."""
    depth = 0
    in_comment = False
    last = ""
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok.startswith("//"):
            continue
        if tok.startswith("/*"):
            if not tok.endswith("*/") or len(tok) < 4:
                in_comment = True
            continue
        if tok in ("(", "[", "{"):
            depth += 1
        elif tok in (")", "]", "}"):
            depth -= 1
        last = tok
    return depth, in_comment, last


def open_brackets(text: str) -> int:
    """How many brackets are open at the end of ``text`` (the REPL's auto-indent)."""
    return max(0, _scan(text)[0])


def balanced(text: str) -> bool:
    """Brackets balanced and no open block comment (a blank line then ends the entry)."""
    depth, in_comment, _last = _scan(text)
    return depth <= 0 and not in_comment


def is_complete(text: str) -> bool:
    """Whether ``text`` is a whole entry: Enter runs it (else Enter continues it).

    Complete: empty, a `:command`, brackets balanced (or over-closed) and ending with
    `;` or `}`, or balanced and parseable once a `;` is added (``1 + 2``). (The front
    ends also accept a balanced entry on an empty line, so a user is never stuck.)
    """
    stripped = text.strip()
    if not stripped or stripped.startswith(":"):
        return True
    depth, in_comment, last = _scan(text)
    if in_comment:
        return False
    if depth < 0:
        return True
    if depth > 0:
        return False
    if last.endswith(";") or last == "}":
        return True
    from cxpar.syntax.parser import parse_text

    return parse_text(text + ";", "<repl>").ok


# --------------------------------------------------------------------------- the session


def data_dir() -> Path:
    """The user's data directory for cxpar (history file)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "cxpar"


def history_path() -> Path:
    """``$CXPAR_HISTORY`` or ``<data dir>/repl_history``."""
    env = os.environ.get("CXPAR_HISTORY")
    return Path(env) if env else data_dir() / "repl_history"


def describe_provider(settings: RunSettings) -> str:
    """The ``:provider`` line: which provider and its sim settings."""
    lat = ",".join(f"{k}={v:g}" for k, v in settings.latency.items()) or "defaults"
    return (f"provider {settings.provider.name}: seed={settings.seed} latency={lat} "
            f"fail-rate={settings.fail_rate:g} timeout-rate={settings.timeout_rate:g}")


class Session:
    """One REPL session. ``execute(text)`` runs an entry; ``command(line)`` a `:command`."""

    def __init__(self, settings: RunSettings | None = None, *, provider: Any = None,
                 stdout: IO[str] | None = None, stderr: IO[str] | None = None,
                 colour: bool = False) -> None:
        self.out: IO[str] = stdout if stdout is not None else sys.stdout
        self.err: IO[str] = stderr if stderr is not None else sys.stderr
        self.colour = colour
        #: The session's settings (clock, seed, sim provider, …); `:clock`/`:provider`
        #: replace them.
        self.settings = settings if settings is not None else RunSettings()
        #: A provider made outside the runtime (a plug-in); None: the built-in one.
        self._provider = provider
        self._echo = False
        self.quit = False
        #: Worst outcome so far (piped mode's exit code): 0, 1 diagnostics, 3 runtime.
        self.status = 0
        self._counter = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.runner: asyncio.Runner | None = None
        #: The journal in use (`:journal`, `--journal`, `--replay`), if any.
        self.journal: Any = None
        self._fresh_state()
        if self.settings.journal is not None or self.settings.replay is not None:
            self._open_journal(self.settings.journal, self.settings.replay)  # JournalError

    # ------------------------------------------------------------------ state

    def _fresh_state(self) -> None:
        from cxpar.runtime.scheduler import Runtime
        from cxpar.runtime.tracing import Recorder

        self._stop_loop()
        #: Declarations of earlier entries, in order: EntityDecl, OnHandler, VarDecl stubs.
        self.decls: list[n.Stmt] = []
        #: Every top-level statement of every successful entry (for `:graph`).
        self.history: list[n.Stmt] = []
        self.sources: dict[str, str] = {}
        self.spans: list[tuple[str, int, int, int, int]] = []
        self.span_ids: dict[tuple[str, int, int, int, int], int] = {}
        self.events: set[str] = set()
        self.rt = Runtime(self.settings, spans=self.spans, provider=self._provider,
                          stdout=self.out, stderr=self.err,
                          recorder=Recorder(keep_spans=False))
        self.rt.sources = self.sources
        if self.journal is not None:  # a reset session replays from the first call again
            from cxpar.journal.keys import Occurrences

            self.journal.provider.occurrences = Occurrences()
            self.journal.provider.inner = self.rt.provider
            self.rt.provider = self.journal.provider
        self._start_loop()

    def _start_loop(self) -> None:
        from cxpar.runtime.clock import new_loop

        loop = new_loop(self.settings.clock, guard_s=self.settings.guard_s)
        self.loop = loop
        self.runner = asyncio.Runner(loop_factory=lambda: loop)
        self.rt.attach(loop)

    def close(self) -> None:
        """Close the event loop and the journal (the session can still be reset)."""
        self._stop_loop()
        self._close_journal()

    def _stop_loop(self) -> None:
        if self.runner is not None:
            try:
                self.runner.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        self.runner = None
        self.loop = None

    @property
    def clock(self) -> str:
        return self.settings.clock

    @property
    def entities(self) -> list[str]:
        return [d.name.name for d in self.decls if isinstance(d, n.EntityDecl)]

    @property
    def globals(self) -> list[str]:
        return [d.name.name for d in self.decls if isinstance(d, n.VarDecl)]

    def words(self) -> list[str]:
        """Names to complete besides keywords: services, builtins, entities, vars, events."""
        from cxpar.lang import BUILTINS

        return sorted(set(self.rt.services) | set(BUILTINS) | set(self.entities)
                      | set(self.globals) | self.events)

    # ------------------------------------------------------------------ output

    def _source_line(self, file: str, line: int) -> str:
        lines = self.sources.get(file, "").split("\n")
        return lines[line - 1] if 1 <= line <= len(lines) else ""

    def print_diagnostics(self, diags: list[Diagnostic]) -> None:
        """Exactly as `cxpar check` renders them (text, stderr)."""
        from cxpar.diagnostics.render import render_text

        for d in diags:
            self.err.write(render_text(d, self._source_line, self.colour) + "\n")
        self.err.flush()

    def _register(self, name: str, text: str) -> None:
        self.sources[name] = text
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)

    # ------------------------------------------------------------------ entries

    def next_name(self) -> str:
        self._counter += 1
        return f"<repl-{self._counter}>"

    def execute(self, text: str, name: str | None = None, *, start: bool = False) -> bool:
        """Parse, analyse, compile and run one entry; False if it had errors."""
        if not text.strip():
            return True
        name = name or self.next_name()
        self._register(name, text)
        program, diags = self._parse(SourceFile(name, text))
        echo = self._echo
        if program is None:
            self.print_diagnostics(diags)
            self.status = max(self.status, 1)
            return False
        comp, diags = self._analyse(SourceFile(name, text), program)
        if diags:
            self.print_diagnostics(diags)
        if comp is None:
            self.status = max(self.status, 1)
            return False
        try:
            factory = self._compile(comp)
        except Exception as exc:  # noqa: BLE001 - never leave the REPL
            self.err.write(f"error: internal error while compiling: {exc!r}\n"
                           "   = note: this is a bug in cxpar; please report it\n")
            self.status = max(self.status, 1)
            return False
        self._remember(program, comp)
        before = self.rt.error_count
        self._run(factory, start=start)
        if self.rt.error_count > before:
            self.status = max(self.status, 3)
        elif echo:
            self._echo_value()
        return True

    def _parse(self, source: SourceFile) -> tuple[n.Program | None, list[Diagnostic]]:
        """Parse an entry; accept a missing final `;`; make a bare expression print."""
        from cxpar.syntax.parser import parse

        result = parse(source)
        program = result.program if result.ok else None
        if program is None:
            depth, _c, last = _scan(source.text)
            if depth == 0 and not last.endswith(";"):
                retry = parse(SourceFile(source.name, source.text + ";"))
                if retry.ok and retry.program is not None:
                    program = retry.program
        if program is None:
            return None, result.diagnostics
        self._echo = self._keep_value(program)
        return program, [d for d in result.diagnostics if not d.is_error]

    def _keep_value(self, program: n.Program) -> bool:
        """A bare expression at the end of an entry becomes ``_ = expr`` (``var _`` the
        first time), echoed after the entry runs in its CX/JSON form, as IPython does
        (``print(…)``, assignments, service calls and ``new`` are not echoed)."""
        body = program.body
        if not body or not isinstance(body[-1], n.ExprStmt):
            return False
        e = body[-1].expr
        if isinstance(e, (n.Assign, n.ServiceCall, n.New)) or (
                isinstance(e, n.Call) and isinstance(e.func, n.Name) and e.func.id == "print"):
            return False  # statements in all but name: `think {…};`, `new A();`
        span = body[-1].span
        if LAST in self.globals:
            body[-1] = n.ExprStmt(span=span, expr=n.Assign(
                span=span, op="=", target=n.Name(span=span, id=LAST), value=e))
        else:
            body[-1] = n.VarDecl(span=span, name=n.Ident(span=span, name=LAST), init=e)
        return True

    def last_value(self) -> Any:
        """The value of ``_`` (the last echoed expression), None if there is none."""
        from cxpar.runtime.support import repl_globals

        return repl_globals(self.rt, []).get(LAST)

    def _echo_value(self) -> None:
        from cxpar.runtime.values import to_json

        value = self.last_value()
        if value is not None:
            self.out.write(to_json(value) + "\n")
            self.out.flush()

    def _analyse(self, source: SourceFile, program: n.Program) -> tuple[Any, list[Diagnostic]]:
        """Analyse earlier declarations + this entry as one program."""
        from cxpar.analysis.pipeline import Compilation, analyse

        new_entities = {s.name.name for s in program.body if isinstance(s, n.EntityDecl)}
        new_vars = {s.name.name for s in program.body if isinstance(s, n.VarDecl)}
        prelude = [d for d in self.decls
                   if not (isinstance(d, n.EntityDecl) and d.name.name in new_entities)
                   and not (isinstance(d, n.VarDecl) and d.name.name in new_vars)]
        whole = n.Program(span=program.span, body=prelude + list(program.body))
        comp = Compilation(source, whole)
        analyse(comp)
        shown = [d for d in comp.diagnostics
                 if d.is_error or (d.span.file == source.name and d.code not in _QUIET_CODES)]
        if comp.has_errors:
            return None, shown
        # Compile only the entry: its own statements and entities.
        mine = {id(s) for s in program.body}
        comp.info = replace(comp.info, entities={
            k: v for k, v in comp.info.entities.items() if id(v.decl) in mine})
        comp.program = program
        return comp, shown

    def _compile(self, comp: Any) -> Callable[[Any], Any]:
        """Generate the entry (REPL mode) with span ids shared across the session."""
        from cxpar.codegen.python import PyGen

        gen = PyGen(comp, repl=True)
        gen.spans = self.spans
        gen.span_ids = self.span_ids
        gen._program = comp.program  # type: ignore[attr-defined]
        module = gen.module()
        py.fix_missing_locations(module)
        code = compile(module, comp.source.name, "exec")
        namespace: dict[str, Any] = {"__name__": "__cx__"}
        exec(code, namespace)  # noqa: S102 - our own generated code
        factory: Callable[[Any], Any] = namespace["__cx_program__"]
        return factory

    def _remember(self, program: n.Program, comp: Any) -> None:
        for s in program.body:
            if isinstance(s, n.EntityDecl):
                self.decls = [d for d in self.decls if not (
                    isinstance(d, n.EntityDecl) and d.name.name == s.name.name)]
                self.decls.append(s)
            elif isinstance(s, n.OnHandler):
                self.decls.append(s)
            elif isinstance(s, n.VarDecl):
                self.decls = [d for d in self.decls if not (
                    isinstance(d, n.VarDecl) and d.name.name == s.name.name)]
                self.decls.append(n.VarDecl(span=s.span, name=s.name, type=s.type, init=None))
        self.history.extend(program.body)
        info = comp.info
        self.events.update(e for e in info.emitted if e != "system.start")
        self.events.update(h.event for h in info.handlers if "any" not in h.parts)

    # ------------------------------------------------------------------ running

    def _run(self, factory: Callable[[Any], Any], *, start: bool = False) -> None:
        from cxpar.runtime.coordinator import DEPTH

        rt = self.rt
        assert self.runner is not None
        stalled: list[bool] = []

        async def entry() -> None:
            DEPTH.set(0)
            task = asyncio.current_task()
            rt.stop_reason = None  # a flood ends one entry, not the session
            rt.main_task = task  # Ctrl-C stops loops that never suspend

            def on_stall() -> None:
                stalled.append(True)
                if task is not None:
                    task.cancel()

            if hasattr(rt.loop, "on_stall"):
                rt.loop.on_stall = on_stall
                rt.loop._stall_reported = False  # type: ignore[attr-defined]
            try:
                main = factory(rt)
                await main(rt)
            except Exception as exc:  # noqa: BLE001 - aborts this entry's top level only
                rt.report(exc, "at the entry's top level")
            if start:
                with contextlib.suppress(Stopped):
                    rt.emit("system.start", {})
            await rt.quiesce()

        try:
            self.runner.run(entry())
        except KeyboardInterrupt:
            self._cancel("interrupted")
        except asyncio.CancelledError:
            if stalled:
                from cxpar.runtime.scheduler import STALLED

                self._cancel(STALLED)
            else:
                self._cancel("cancelled")
        finally:
            try:
                self.out.flush()
            except (OSError, ValueError):
                pass

    def _cancel(self, message: str) -> None:
        """Cancel everything still running and report ``message``."""
        from cxpar.runtime.errors import render_error

        rt = self.rt
        pend = rt.pending()
        rt.cancel_all()
        tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for t in tasks:
            t.cancel()

        async def drain() -> None:
            if tasks:
                await asyncio.wait(tasks, timeout=1.0)

        if self.runner is not None:
            try:
                self.runner.run(drain())
            except (KeyboardInterrupt, asyncio.CancelledError):
                pass
        rt._inflight = sum(1 for t in rt._tasks if not t.done())
        note = [f"cancelled: {', '.join(pend[:10])}"
                + (f" and {len(pend) - 10} more" if len(pend) > 10 else "")] if pend else []
        self.err.write(render_error(message, None, {}, notes=note) + "\n")
        self.err.flush()

    # ------------------------------------------------------------------ commands

    def command(self, line: str) -> None:
        """Run a `:command` line."""
        cmd, _sp, arg = line.strip()[1:].partition(" ")
        arg = arg.strip()
        handler = {
            "help": self.cmd_help, "h": self.cmd_help, "?": self.cmd_help,
            "ast": self.cmd_ast, "graph": self.cmd_graph, "load": self.cmd_load,
            "reset": self.cmd_reset, "clock": self.cmd_clock, "provider": self.cmd_provider,
            "stats": self.cmd_stats, "journal": self.cmd_journal,
            "quit": self.cmd_quit, "q": self.cmd_quit,
            "exit": self.cmd_quit,
        }.get(cmd)
        if handler is None:
            self.err.write(f"error: unknown command `:{cmd}` (try `:help`)\n")
            return
        handler(arg)

    def cmd_help(self, arg: str) -> None:
        self.out.write(HELP + "\n")

    def cmd_quit(self, arg: str) -> None:
        self.quit = True

    def cmd_ast(self, arg: str) -> None:
        from cxpar.ast.dump import dump_text

        if not arg:
            self.err.write("usage: :ast EXPR-OR-STMT\n")
            return
        name = self.next_name()
        self._register(name, arg)
        program, diags = self._parse(SourceFile(name, arg))
        if program is None:
            self.print_diagnostics(diags)
            return
        for i, s in enumerate(program.body):
            node: n.Node = s
            if self._echo and i == len(program.body) - 1:  # a bare expression: itself
                if isinstance(s, n.VarDecl) and s.init is not None:
                    node = s.init
                elif isinstance(s, n.ExprStmt) and isinstance(s.expr, n.Assign):
                    node = s.expr.value
            self.out.write(dump_text(node))

    def cmd_graph(self, arg: str) -> None:
        try:
            from cxpar.analysis.graph import Graph  # noqa: F401
        except ImportError:
            self.err.write("the stream graph is not available in this build\n")
            return
        from cxpar.analysis.pipeline import Compilation, analyse

        if not self.history:
            self.out.write("(nothing entered yet)\n")
            return
        seen: set[str] = set()
        body: list[n.Stmt] = []
        for s in self.history:  # a `var` entered twice becomes an assignment the 2nd time
            if isinstance(s, n.VarDecl):
                if s.name.name in seen:
                    if s.init is not None:
                        body.append(n.ExprStmt(span=s.span, expr=n.Assign(
                            span=s.span, op="=", target=n.Name(span=s.name.span, id=s.name.name),
                            value=s.init)))
                    continue
                seen.add(s.name.name)
            body.append(s)
        first = body[0].span
        program = n.Program(span=first, body=body)
        comp = Compilation(SourceFile("<repl>", ""), program, latency=dict(self.settings.latency))
        analyse(comp)
        g = comp.graph
        if g is None:
            self.err.write("the stream graph is not available in this build\n")
            return
        fmt = arg or "text"
        try:
            from cxpar.analysis.graph_format import render
        except ImportError:
            self.out.write(render_graph(g) + "\n")
            return
        try:
            text = render(g, fmt, colour=self.colour)
        except (ValueError, KeyError):
            self.err.write(f"error: unknown graph format `{fmt}` (text, mermaid, dot, json)\n")
            return
        self.out.write(text if text.endswith("\n") else text + "\n")

    def cmd_load(self, arg: str) -> None:
        from cxpar.syntax.source import read_source

        if not arg:
            self.err.write("usage: :load FILE\n")
            return
        path = Path(arg).expanduser()
        if not path.is_file():
            self.err.write(f"error: no such file: `{arg}`\n")
            return
        loaded = read_source(path, arg)
        if isinstance(loaded, Diagnostic):
            self.print_diagnostics([loaded])
            return
        self.execute(loaded.text, loaded.name, start=True)

    def cmd_reset(self, arg: str) -> None:
        self._fresh_state()
        self.err.write("session reset\n")

    def cmd_clock(self, arg: str) -> None:
        if not arg:
            self.out.write(f"clock: {self.clock}\n")
            return
        if arg not in ("real", "virtual"):
            self.err.write("usage: :clock real|virtual\n")
            return
        try:
            self.settings = self.settings.replace(clock=arg)
        except SettingsError as exc:
            self.err.write(f"error: {exc.message}\n")
            return
        self._stop_loop()
        self._start_loop()
        self.out.write(f"clock: {arg}\n")

    def cmd_provider(self, arg: str) -> None:
        if not arg:
            self.out.write(describe_provider(self.settings) + "\n")
            return
        from cxpar.runtime.providers import build_provider
        from cxpar.runtime.standalone import parse_latency

        changes: dict[str, Any] = {}
        latency = dict(self.settings.latency)
        try:
            for word in arg.split():
                key, sep, value = word.partition("=")
                key = key.strip().lower().replace("_", "-")
                if not sep:
                    if key != "sim":
                        raise ValueError(f"unknown provider `{key}` (available: sim)")
                    changes["provider"] = ProviderSettings()
                elif key == "seed":
                    changes["seed"] = int(value)
                elif key == "latency":
                    latency.update(parse_latency(value))
                    changes["latency"] = latency
                elif key in ("fail-rate", "timeout-rate"):
                    changes[key.replace("-", "_")] = float(value)
                else:
                    raise ValueError(f"unknown provider setting `{key}`")
            if self.settings.provider.name != "sim":
                changes.setdefault("provider", ProviderSettings())
            settings = self.settings.replace(**changes)
        except SettingsError as exc:
            self.err.write(f"error: {exc.name.replace('_', '-')} {exc.message}\n")
            return
        except ValueError as exc:
            self.err.write(f"error: {exc}\n")
            return
        self.settings = settings
        self._provider = None
        self.rt.provider = build_provider(settings)
        if self.journal is not None:
            self.journal.provider.inner = self.rt.provider
            self.rt.provider = self.journal.provider
        self.out.write(describe_provider(settings) + "\n")

    def cmd_journal(self, arg: str) -> None:
        if not arg:
            j = self.journal
            if j is None:
                self.out.write("journal: off\n")
            else:
                p = j.provider
                mode = "replay" if p.strict else "journal"
                self.out.write(f"{mode}: {j.journal.path} ({p.served} served, "
                               f"{p.recorded} recorded, {p.not_recorded} not recorded)\n")
            return
        from cxpar.journal import JournalError

        self._close_journal()
        if arg == "off":
            self.out.write("journal: off\n")
            return
        try:
            self._open_journal(arg, None)
        except JournalError as exc:
            self.err.write(f"error: {exc}\n")
            return
        self.out.write(f"journal: {arg} (provider calls are recorded, and served when "
                       "already recorded)\n")

    def _open_journal(self, journal: str | None, replay: str | None) -> None:
        from cxpar.journal import attach

        inner = self.rt.provider
        session = attach(inner, journal=journal, replay=replay, program="<repl>", source="",
                         kind="repl")
        assert session is not None
        self.journal = session
        self.rt.provider = session.provider

    def _close_journal(self) -> None:
        if self.journal is None:
            return
        self.rt.provider = self.journal.provider.inner
        self.journal.finish(self.status)
        self.journal = None

    def cmd_stats(self, arg: str) -> None:
        rec = self.rt.recorder
        if rec is None or not rec.rows():
            self.err.write("no service calls or handlers have run yet\n")
            return
        rec.render_stats(self.err)


def render_graph(g: Any) -> str:
    """A short text view of a stream graph: batches, critical path, estimates."""
    by_id = {x.id: x for x in g.nodes}

    def label(i: int) -> str:
        x = by_id[i]
        where = f" @{x.span.file}:{x.span.line}" if x.span is not None else ""
        return f"{x.kind} {x.label}{where}"

    lines = [f"stream graph: {len(g.nodes)} nodes, {len(g.batches)} batches"
             + (" (truncated)" if g.truncated else "")]
    for k, batch in enumerate(g.batches):
        lines.append(f"  batch {k}: " + ", ".join(label(i) for i in batch))
    if g.critical_path:
        lines.append("critical path: " + " -> ".join(by_id[i].label for i in g.critical_path))
    lines.append(f"estimated {g.estimated_ms:g} ms (sequential {g.sequential_ms:g} ms, "
                 f"speedup {g.speedup:.2f}x)")
    return "\n".join(lines)



def feed(session: Session, text: str) -> int:
    """Run ``text`` (several entries) through ``session``, split as the prompt splits it."""
    import io

    return run_piped(session, io.StringIO(text), close=False)


def run_piped(session: Session, stream: IO[str], *, close: bool = True) -> int:
    """Piped mode: entries from ``stream``, no prompts, no colours; the worst exit code.

    A line completes the entry when :func:`is_complete` says so; a blank line completes
    a balanced entry; end of input runs whatever is left.
    """
    buf: list[str] = []

    def submit() -> None:
        entry = "\n".join(buf)
        buf.clear()
        if entry.strip().startswith(":"):
            session.command(entry.strip())
        else:
            session.execute(entry)

    for raw in stream:
        line = raw.rstrip("\n").rstrip("\r")
        if not buf and not line.strip():
            continue
        if buf and not line.strip() and balanced("\n".join(buf)):
            submit()
        else:
            buf.append(line)
            if is_complete("\n".join(buf)):
                submit()
        if session.quit:
            break
    if buf and not session.quit:
        submit()
    if close:
        session.close()
    return session.status
