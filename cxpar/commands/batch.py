"""``cxpar run`` options for batch runs (``--input``) and the live ``--dashboard``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from cxpar.driver import UsageError

__all__ = ["batch_options", "check_batch", "critical_services", "run_batch_cli"]

_OPTIONS = [
    click.option("--input", "input_path", type=click.Path(dir_okay=False), default=None,
                 metavar="RECORDS.jsonl",
                 help="Batch run: one isolated stream per JSONL record, delivered as "
                      "`input.record`; `emit output.record` writes result lines."),
    click.option("--output", "output_path", type=click.Path(dir_okay=False), default=None,
                 metavar="RESULTS.jsonl",
                 help="Batch run: write result lines here (default: stdout)."),
    click.option("--streams", type=click.IntRange(1), default=100, show_default=True,
                 help="Batch run: streams in flight at once."),
    click.option("--ordered", is_flag=True,
                 help="Batch run: write result lines in input order."),
    click.option("--resume", is_flag=True,
                 help="Batch run: skip the records already in --output."),
    click.option("--no-progress", "no_progress", is_flag=True,
                 help="Batch run: no progress display on stderr."),
    click.option("--dashboard", is_flag=True,
                 help="Show a live view of handlers, services and streams on stderr."),
]


def batch_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the batch and dashboard options (they arrive as keyword arguments)."""
    for opt in reversed(_OPTIONS):
        fn = opt(fn)
    return fn


def check_batch(opts: dict[str, Any]) -> None:
    """Usage errors for option combinations (before anything is compiled)."""
    if opts["input_path"] is None:
        for name, flag in (("output_path", "--output"), ("resume", "--resume"),
                           ("ordered", "--ordered")):
            if opts[name]:
                raise UsageError(f"{flag} needs --input (a batch run)")
        return
    if not Path(opts["input_path"]).is_file():
        raise UsageError(f"no such input file: `{opts['input_path']}`")
    if opts["resume"] and opts["output_path"] is None:
        raise UsageError("--resume needs --output (the results file to resume)")


def critical_services(comp: Any) -> list[str]:
    """The services on the static critical path of the stream execution graph."""
    g = getattr(comp, "graph", None)
    if g is None:
        return []
    return [g.nodes[i].label for i in g.critical_path if g.nodes[i].kind == "call"]


def run_batch_cli(program: Any, compiled: Any, opts: dict[str, Any], *, timeout_ms: float,
                  critical: list[str], **common: Any) -> int:
    """``cxpar run --input``: see :func:`cxpar.runtime.streams.run_batch`."""
    from cxpar.runtime.streams import BatchOptions, run_batch

    bopts = BatchOptions(input=opts["input_path"], output=opts["output_path"],
                         streams=opts["streams"], ordered=opts["ordered"],
                         resume=opts["resume"], timeout_ms=timeout_ms,
                         progress=not opts["no_progress"])
    return run_batch(program, compiled.spans, compiled.sources, bopts, critical=critical,
                     dashboard=opts["dashboard"], **common)
