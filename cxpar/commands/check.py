"""``cxpar check``: parse and analyse, report diagnostics, run nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cxpar.commands.common import count, print_diagnostics
from cxpar.diagnostics.render import summary
from cxpar.driver import collect_paths, front_end


@click.command("check")
@click.argument("paths", nargs=-1, required=True)
@click.option("--syntax-only", is_flag=True, help="Parse only; skip name and event analysis.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Diagnostics as rustc-style text (stderr) or JSON lines (stdout).")
@click.option("--provider", default=None, metavar="NAME",
              help="A plug-in provider (MODULE:ATTR or entry point) whose services to know.")
def check(paths: tuple[str, ...], syntax_only: bool, fmt: str, provider: str | None) -> None:
    """Check CX files (or directories of *.cx files) without running them."""
    files = collect_paths(list(paths))
    extra: dict[str, str] = {}
    if not syntax_only and _may_have_plugins(files[0][0] if files else None, provider):
        from cxpar.plugins import prepare_check

        extra = prepare_check(files[0][0] if files else None, provider)
    errors = warnings = 0
    for path, name in files:
        fe = front_end(path, name, syntax_only=syntax_only, extra_services=extra)
        print_diagnostics(fe, fmt)
        e, w = count(fe.diagnostics)
        errors += e
        warnings += w
    sys.stdout.flush()
    if fmt == "text" or errors or warnings:
        click.echo(summary(len(files), errors, warnings), err=True)
    sys.exit(1 if errors else 0)


def _may_have_plugins(path: Path | None, provider: str | None) -> bool:
    """Whether plug-in services could exist; keeps a plain `cxpar check` start-up small."""
    import os

    from cxpar.config import find_config

    if provider or os.environ.get("CXPAR_PROVIDER") or find_config(path) is not None:
        return True
    from importlib.metadata import entry_points

    return bool(entry_points(group="cxpar.services")) or bool(
        entry_points(group="cxpar.providers"))
