"""``cxpar journal [show|stats] PATH``: what is in a journal (a rich table, or JSON)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from cxpar.driver import UsageError

VIEWS = ("stats", "show")


@click.command("journal")
@click.argument("args", nargs=-1, metavar="[show|stats] PATH")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="A table, or JSON for tools (show: one call per line).")
@click.option("--stream", type=int, default=None,
              help="show: only this stream (a batch record's index; -1 is a single run).")
@click.option("--service", default=None, help="show: only calls of this service.")
@click.option("--limit", type=click.IntRange(1), default=None,
              help="show: at most this many calls; stats: this many slowest calls (5).")
def journal(args: tuple[str, ...], fmt: str, stream: int | None, service: str | None,
            limit: int | None) -> None:
    """What a journal holds: runs, streams done, calls per service, tokens and the
    slowest calls (stats, the default), or every call (show)."""
    if len(args) == 1:
        view, path = "stats", args[0]
    elif len(args) == 2 and args[0] in VIEWS:
        view, path = args
    else:
        raise UsageError("usage: cxpar journal [show|stats] PATH")
    from cxpar.journal.schema import JournalError, connect

    try:
        conn = connect(path, write=False)
    except JournalError as exc:
        raise UsageError(str(exc)) from None
    try:
        if view == "stats":
            _stats(conn, path, fmt, limit or 5)
        else:
            _show(conn, fmt, stream, service, limit)
    finally:
        conn.close()


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, soft_wrap=False, highlight=False, markup=False,
                   emoji=False, width=None if sys.stdout.isatty() else 120)


def _stats(conn: Any, path: str, fmt: str, slowest: int) -> None:
    from cxpar.journal.report import excerpt, stats

    data = stats(conn, slowest=slowest)
    if fmt == "json":
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    from rich.table import Table

    con = _console()
    s = data["streams"]
    tok = data["tokens"]
    tokens = "not reported" if tok["prompt"] is None and tok["completion"] is None \
        else f"{tok['prompt'] or 0} prompt + {tok['completion'] or 0} completion"
    con.print(f"journal {path}: {_n(data['calls'], 'call')} in {_n(len(data['runs']), 'run')}, "
              f"{_n(s['done'], 'batch stream')} done ({s['failed']} failed), tokens: {tokens}")
    runs = Table(title="runs", title_justify="left")
    for col in ("run", "started", "status", "kind", "program", "provider", "calls"):
        runs.add_column(col, justify="right" if col in ("run", "calls") else "left")
    for r in data["runs"]:
        runs.add_row(str(r["id"]), _when(r["started_at"]), r["status"], r["kind"],
                     r["program"], r["provider"] or "", str(r["calls"]))
    con.print(runs)
    svc = Table(title="calls per service", title_justify="left")
    for col in ("service", "calls", "streams", "mean ms", "max ms", "prompt tok",
                "completion tok"):
        svc.add_column(col, justify="left" if col == "service" else "right")
    for r in data["services"]:
        svc.add_row(r["service"], str(r["calls"]), str(r["streams"]), _ms(r["mean_ms"]),
                    _ms(r["max_ms"]), _num(r["prompt_tokens"]), _num(r["completion_tokens"]))
    con.print(svc)
    slow = Table(title="slowest calls", title_justify="left")
    for col in ("ms", "service", "stream", "request"):
        slow.add_column(col, justify="right" if col in ("ms", "stream") else "left",
                        overflow="ellipsis", no_wrap=True)
    for c in data["slowest"]:
        slow.add_row(_ms(c["duration_ms"]), c["service"], _stream(c["stream"]),
                     excerpt(c["request"]))
    con.print(slow)


def _show(conn: Any, fmt: str, stream: int | None, service: str | None,
          limit: int | None) -> None:
    from cxpar.journal.report import calls, excerpt

    rows = calls(conn, stream=stream, service=service, limit=limit)
    if fmt == "json":
        for c in rows:
            click.echo(json.dumps(c, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table()
    for col in ("run", "stream", "service", "occ", "ms", "request", "answer"):
        table.add_column(col, justify="right" if col in ("run", "stream", "occ", "ms")
                         else "left", overflow="ellipsis", no_wrap=col != "answer")
    for c in rows:
        table.add_row(str(c["run"]), _stream(c["stream"]), c["service"], str(c["occurrence"]),
                      _ms(c["duration_ms"]), excerpt(c["request"], 50),
                      excerpt(c["answer"], 50))
    _console().print(table)


def _n(count: int, what: str) -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


def _when(t: float | None) -> str:
    return "" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _ms(v: float | None) -> str:
    return "" if v is None else f"{v:.0f}"


def _num(v: int | None) -> str:
    return "" if v is None else str(v)


def _stream(s: int) -> str:
    return "run" if s < 0 else str(s)
