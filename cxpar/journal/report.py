"""What ``cxpar journal`` shows: a journal's runs, streams, calls per service, tokens,
slowest calls (``stats``) and its calls one by one (``show``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from .liveness import run_status
from .schema import SCHEMA_VERSION

__all__ = ["calls", "stats"]

#: Characters of a request or answer shown in a table cell.
EXCERPT = 60


def stats(conn: sqlite3.Connection, *, slowest: int = 5) -> dict[str, Any]:
    """The summary of a journal as plain data (the ``--format json`` document)."""
    runs = [
        {"id": r[0], "started_at": r[1], "finished_at": r[2],
         "status": run_status(r[3], r[9], r[10]),
         "program": r[4], "kind": r[5], "provider": r[6], "cxpar_version": r[7],
         "calls": r[8], "pid": r[9], "host": r[10]}
        for r in conn.execute(
            "SELECT r.id, r.started_at, r.finished_at, r.status, r.program, r.kind, "
            "r.provider, r.cxpar_version, (SELECT count(*) FROM calls c WHERE c.run_id = r.id), "
            "r.pid, r.host FROM runs r ORDER BY r.id")]
    services = [
        {"service": r[0], "calls": r[1], "streams": r[2], "total_ms": r[3], "mean_ms": r[4],
         "max_ms": r[5], "prompt_tokens": r[6], "completion_tokens": r[7]}
        for r in conn.execute(
            "SELECT service, count(*), count(DISTINCT stream), sum(duration_ms), "
            "avg(duration_ms), max(duration_ms), sum(prompt_tokens), sum(completion_tokens) "
            "FROM calls GROUP BY service ORDER BY count(*) DESC, service")]
    total, prompt, completion, streams = conn.execute(
        "SELECT count(*), sum(prompt_tokens), sum(completion_tokens), "
        "count(DISTINCT stream) FROM calls").fetchone()
    done, failed = conn.execute(
        "SELECT count(*), coalesce(sum(failed), 0) FROM streams").fetchone()
    slow = [_call(r) for r in conn.execute(
        _CALL_SQL + " ORDER BY duration_ms DESC, id LIMIT ?", (slowest,))]
    return {
        "schema_version": SCHEMA_VERSION,
        "runs": runs,
        "calls": total,
        "streams": {"with_calls": streams, "done": done, "failed": failed},
        "tokens": {"prompt": prompt, "completion": completion},
        "services": services,
        "slowest": slow,
    }


_CALL_SQL = ("SELECT id, run_id, stream, service, occurrence, attempt, started_at, "
             "duration_ms, endpoint, model, prompt_tokens, completion_tokens, request, "
             "answer FROM calls")


def calls(conn: sqlite3.Connection, *, stream: int | None = None,
          service: str | None = None, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """The recorded calls in the order they were recorded (optionally filtered)."""
    where: list[str] = []
    args: list[Any] = []
    if stream is not None:
        where.append("stream = ?")
        args.append(stream)
    if service is not None:
        where.append("service = ?")
        args.append(service)
    sql = _CALL_SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    for row in conn.execute(sql, args):
        yield _call(row)


def _call(r: tuple[Any, ...]) -> dict[str, Any]:
    return {"id": r[0], "run": r[1], "stream": r[2], "service": r[3], "occurrence": r[4],
            "attempt": r[5], "started_at": r[6], "duration_ms": r[7], "endpoint": r[8],
            "model": r[9], "prompt_tokens": r[10], "completion_tokens": r[11],
            "request": _loads(r[12]), "answer": _loads(r[13])}


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def excerpt(value: Any, width: int = EXCERPT) -> str:
    """A value on one line, cut to ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"
